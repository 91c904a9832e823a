package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Exchange is one HTTP request and its answer as they crossed the wire, kept as evidence
// for the summary (the generated clients only hand back decoded models).
type Exchange struct {
	Name        string          `json:"name"`
	Method      string          `json:"method"`
	URL         string          `json:"url"`
	Proto       string          `json:"proto"`
	Status      int             `json:"status"`
	ContentType string          `json:"contentType,omitempty"`
	Location    string          `json:"location,omitempty"`
	Request     json.RawMessage `json:"request,omitempty"`
	Response    json.RawMessage `json:"response,omitempty"`
	LatencyMs   float64         `json:"latencyMs"`
	rawRequest  []byte
	rawResponse []byte
}

// recorder is an http.RoundTripper that keeps a copy of every exchange.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []*Exchange
}

func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return json.RawMessage(b)
	}
	s, _ := json.Marshal(string(b))
	return json.RawMessage(s)
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
	}
	start := time.Now()
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	ex := &Exchange{
		Method: req.Method, URL: req.URL.String(), Proto: resp.Proto, Status: resp.StatusCode,
		ContentType: resp.Header.Get("Content-Type"), Location: resp.Header.Get("Location"),
		Request: asJSON(reqBody), Response: asJSON(respBody),
		LatencyMs:  float64(time.Since(start).Microseconds()) / 1000,
		rawRequest: reqBody, rawResponse: respBody,
	}
	r.mu.Lock()
	r.log = append(r.log, ex)
	r.mu.Unlock()
	return resp, nil
}

// last names and returns the most recent exchange (nil if the request never got an answer).
func (r *recorder) last(name string, before int) *Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.log) <= before {
		return nil
	}
	ex := r.log[len(r.log)-1]
	ex.Name = name
	return ex
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

// newH2CClient speaks HTTP/2 over cleartext TCP with prior knowledge (no upgrade, no TLS):
// the x/net/http2 Transport with AllowHTTP and a plain dial in place of the TLS dial.
func newH2CClient(timeout time.Duration) (*http.Client, *recorder) {
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	rec := &recorder{next: tr}
	return &http.Client{
		Transport: rec,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, rec
}
