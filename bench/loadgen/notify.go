package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The receiving side of the SMFs: an h2c (HTTP/2 prior knowledge) server for the PCF's
// SmPolicyNotification ({notificationUri}/update and /terminate) and the CHF's
// ChargingNotifyRequest (notifyUri). Every session has its own URIs:
//
//	/smf/pcf/<session>/update|terminate     /smf/chf/<session>
//
// so that a notification is tied to the session (and subscriber) without a lookup in the
// body. It measures cap-to-throttle-notification latency against the crossings the
// sessions register just before sending the CHF update that reaches the cap.

type crossing struct {
	sent     time.Time // the CHF update that reaches the cap left the generator
	answered time.Time // its response arrived (zero until then)
	notified time.Time // the SmPolicyNotification arrived (zero until then)
	ambr     string    // the downlink session AMBR before (from the policy create)
	newAmbr  string
	arrived  chan struct{} // closed when the notification arrives
}

type notifyStats struct {
	PcfUpdate     int64            `json:"pcf_update"`
	PcfTerminate  int64            `json:"pcf_terminate"`
	Chf           map[string]int64 `json:"chf"`
	Unexpected    int64            `json:"unexpected_pcf_update"`
	Duplicate     int64            `json:"duplicate_pcf_update"`
	SpeedSame     int64            `json:"pcf_update_same_speed"`
	Early         int64            `json:"notified_before_crossing_response"`
	BadBody       int64            `json:"bad_body"`
	ReceivedBytes int64            `json:"received_bytes"`
}

type tracker struct {
	mu        sync.Mutex
	createAmb map[string]string // session -> downlink AMBR from the policy create
	crossings map[string]*crossing
	stats     notifyStats
}

func newTracker() *tracker {
	return &tracker{createAmb: map[string]string{}, crossings: map[string]*crossing{},
		stats: notifyStats{Chf: map[string]int64{}}}
}

func (t *tracker) policyCreated(sess, ambr string) {
	t.mu.Lock()
	t.createAmb[sess] = ambr
	t.mu.Unlock()
}

func (t *tracker) crossingSent(sess string, at time.Time) {
	t.mu.Lock()
	t.crossings[sess] = &crossing{sent: at, ambr: t.createAmb[sess], arrived: make(chan struct{})}
	t.mu.Unlock()
}

// waitNotified waits until the session's crossing was notified, at most limit or until
// stopped() says the run stops; at once if the session crossed nothing.
func (t *tracker) waitNotified(sess string, limit time.Duration, stopped func() bool) {
	t.mu.Lock()
	c := t.crossings[sess]
	t.mu.Unlock()
	if c == nil || limit <= 0 {
		return
	}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !stopped() {
		select {
		case <-c.arrived:
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

func (t *tracker) crossingAnswered(sess string, at time.Time) {
	t.mu.Lock()
	if c := t.crossings[sess]; c != nil {
		c.answered = at
	}
	t.mu.Unlock()
}

func (t *tracker) onPolicyUpdate(sess string, at time.Time, body []byte) {
	var n struct {
		Decision struct {
			SessRules map[string]struct {
				AuthSessAmbr *struct {
					Uplink   string `json:"uplink"`
					Downlink string `json:"downlink"`
				} `json:"authSessAmbr"`
			} `json:"sessRules"`
		} `json:"smPolicyDecision"`
	}
	bad := json.Unmarshal(body, &n) != nil
	ambr := ""
	for _, r := range n.Decision.SessRules {
		if r.AuthSessAmbr != nil {
			ambr = r.AuthSessAmbr.Downlink
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.PcfUpdate++
	if bad {
		t.stats.BadBody++
	}
	c := t.crossings[sess]
	switch {
	case c == nil:
		t.stats.Unexpected++
	case !c.notified.IsZero():
		t.stats.Duplicate++
	default:
		c.notified = at
		c.newAmbr = ambr
		close(c.arrived)
		if ambr == "" || ambr == c.ambr {
			t.stats.SpeedSame++
		}
		if c.answered.IsZero() {
			t.stats.Early++
		}
	}
}

type throttleReport struct {
	Crossings    int64   `json:"crossings"`
	Notified     int64   `json:"notified"`
	Missing      int64   `json:"missing"`
	FromSend     latency `json:"from_send"`
	FromResponse latency `json:"from_response"`
	ExampleAmbr  string  `json:"example_throttled_downlink,omitempty"`
}

func (t *tracker) report() (throttleReport, notifyStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var r throttleReport
	var fromSend, fromResp []float32
	for _, c := range t.crossings {
		r.Crossings++
		if c.notified.IsZero() {
			r.Missing++
			continue
		}
		r.Notified++
		fromSend = append(fromSend, float32(c.notified.Sub(c.sent).Seconds()*1e3))
		if !c.answered.IsZero() {
			// Negative when the notification overtook the response: kept as is.
			fromResp = append(fromResp, float32(c.notified.Sub(c.answered).Seconds()*1e3))
		}
		if r.ExampleAmbr == "" {
			r.ExampleAmbr = c.newAmbr
		}
	}
	r.FromSend = summarize(fromSend, 0)
	r.FromResponse = summarize(fromResp, 0)
	st := t.stats
	st.Chf = map[string]int64{}
	for k, v := range t.stats.Chf {
		st.Chf[k] = v
	}
	return r, st
}

func (t *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	t.mu.Lock()
	t.stats.ReceivedBytes += int64(len(body))
	t.mu.Unlock()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 4 && parts[0] == "smf" && parts[1] == "pcf" && parts[3] == "update":
		t.onPolicyUpdate(parts[2], at, body)
	case len(parts) == 4 && parts[0] == "smf" && parts[1] == "pcf" && parts[3] == "terminate":
		t.mu.Lock()
		t.stats.PcfTerminate++
		t.mu.Unlock()
	case len(parts) == 3 && parts[0] == "smf" && parts[1] == "chf":
		var n struct {
			Type string `json:"notificationType"`
		}
		_ = json.Unmarshal(body, &n)
		t.mu.Lock()
		t.stats.Chf[n.Type]++
		t.mu.Unlock()
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// startReceiver serves the tracker on addr (127.0.0.1:0 picks a port) over h2c with
// prior knowledge (and HTTP/1.1, which a conforming NF never uses). Returns the base URI.
func startReceiver(addr string, t *tracker) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           t,
		Protocols:         &protos,
		ReadHeaderTimeout: 10 * time.Second,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: 1000},
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}
