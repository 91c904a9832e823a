package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

// conn is one long-lived HTTP/2 connection (h2c, prior knowledge) to the NF, as one SMF
// keeps it. Each has its own http2.Transport so that the connection count is exact; the
// transport redials by itself if the NF closes the connection. `slots` bounds the number
// of concurrent streams this client opens on it.
type conn struct {
	id    int
	base  *url.URL // the NF instance this connection talks to
	tr    *http2.Transport
	slots chan struct{}
	dials atomic.Int64
}

type pool struct {
	conns []*conn
	next  atomic.Uint64
}

// newPool opens nconns connections; with several targets (comma-separated NF instances),
// connection i goes to target i mod len(targets), as SMFs spread over a Service's pods.
func newPool(targets string, nconns, streams int) (*pool, error) {
	var bases []*url.URL
	for _, base := range strings.Split(targets, ",") {
		u, err := url.Parse(strings.TrimSpace(base))
		if err != nil {
			return nil, err
		}
		if u.Scheme != "http" {
			return nil, fmt.Errorf("target %q: only h2c (http://) is supported", base)
		}
		host := u.Hostname()
		if host != "127.0.0.1" && host != "localhost" && host != "::1" {
			return nil, fmt.Errorf("target %q: traffic is only allowed to the loopback address", base)
		}
		bases = append(bases, u)
	}
	if nconns < len(bases) {
		return nil, fmt.Errorf("%d connections cannot reach %d targets", nconns, len(bases))
	}
	p := &pool{}
	for i := 0; i < nconns; i++ {
		c := &conn{id: i, base: bases[i%len(bases)], slots: make(chan struct{}, streams)}
		c.tr = &http2.Transport{
			AllowHTTP:                  true,
			StrictMaxConcurrentStreams: true,
			DisableCompression:         true,
			ReadIdleTimeout:            30 * time.Second,
			PingTimeout:                10 * time.Second,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				c.dials.Add(1)
				var d net.Dialer
				nc, err := d.DialContext(ctx, network, addr)
				if err == nil {
					if tc, ok := nc.(*net.TCPConn); ok {
						_ = tc.SetNoDelay(true)
					}
				}
				return nc, err
			},
		}
		p.conns = append(p.conns, c)
	}
	return p, nil
}

// pick returns the connection a new session sticks to (round robin).
func (p *pool) pick() *conn {
	return p.conns[p.next.Add(1)%uint64(len(p.conns))]
}

func (p *pool) close() {
	for _, c := range p.conns {
		c.tr.CloseIdleConnections()
	}
}

func (p *pool) dials() int64 {
	var n int64
	for _, c := range p.conns {
		n += c.dials.Load()
	}
	return n
}

// reply is what the session logic needs from a response.
type reply struct {
	status   int
	location string
	body     []byte
}

// do sends one request on c and reads the whole response. The error, if any, is already
// classified into a short cause for the report.
func (c *conn) do(ctx context.Context, p *pool, method, path string, body []byte) (reply, string, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return reply{}, "cancelled", ctx.Err()
	}
	defer func() { <-c.slots }()
	u := *c.base
	u.Path = path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return reply{}, "client:bad-request", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = int64(len(body))
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return reply{}, classify(ctx, err), err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, classify(ctx, err), err
	}
	return reply{status: resp.StatusCode, location: resp.Header.Get("Location"), body: b}, "", nil
}

func classify(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "transport:timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "transport:connection-refused"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrDeadlineExceeded):
		return "transport:connection-lost"
	}
	var se http2.StreamError
	if errors.As(err, &se) {
		return "transport:stream-" + se.Code.String()
	}
	var ga http2.GoAwayError
	if errors.As(err, &ga) {
		return "transport:goaway"
	}
	return "transport:other"
}
