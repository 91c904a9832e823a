// Command loadgen plays several SMFs against the NF over HTTP/2 (h2c, prior knowledge):
// a few long-lived connections with many concurrent streams each, PDU sessions of
// PCF create -> CHF create -> K CHF updates with usage -> CHF release -> PCF delete over a
// seeded population, and an h2c server receiving the PCF's and the CHF's notifications.
// It only ever talks to the loopback address and always stops by itself.
//
// Output: one JSON document (see `result`) on stdout or in -out; progress on stderr.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

type result struct {
	Mode          string               `json:"mode"`
	Config        map[string]any       `json:"config"`
	WindowS       float64              `json:"window_s"`
	Ops           map[string]latency   `json:"ops"`
	Errors        map[string]int64     `json:"errors"`
	WarmupErrors  map[string]int64     `json:"warmup_errors"`
	ErrorsTotal   int64                `json:"errors_total"`
	Outcomes      map[string]int64     `json:"outcomes"`
	Sessions      map[string]int64     `json:"sessions"`
	Throttle      *throttleReport      `json:"throttle,omitempty"`
	Notifications *notifyStats         `json:"notifications,omitempty"`
	ClientCPU     map[string]float64   `json:"client_cpu"`
	Connections   map[string]int64     `json:"connections"`
	Progress      []map[string]float64 `json:"progress"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func main() {
	target := flag.String("target", "http://127.0.0.1:8000", "the NF's SBI base URI (loopback only); several instances comma-separated")
	mode := flag.String("mode", "closed", "closed (N concurrent sessions), open (sessions/s) or healthz (GET /healthz, closed loop)")
	conns := flag.Int("conns", 4, "HTTP/2 connections (one per simulated SMF)")
	streams := flag.Int("streams", 64, "max concurrent streams per connection")
	concurrency := flag.Int("concurrency", 128, "closed loop: concurrent sessions")
	rate := flag.Float64("rate", 300, "open loop: new sessions per second")
	maxSessions := flag.Int("max-sessions", 20000, "open loop: sessions in progress before new ones are dropped")
	duration := flag.Duration("duration", 30*time.Second, "measurement window")
	warmup := flag.Duration("warmup", 5*time.Second, "load before the window, not measured")
	updates := flag.Int("updates", 5, "CHF updates per session (K)")
	reqBytes := flag.Int64("request-bytes", 1<<20, "requestedUnit totalVolume")
	useBytes := flag.Int64("usage-bytes", 1<<20, "bytes used per update (at most what was granted)")
	rg := flag.Int("rating-group", 10, "rating group")
	dnn := flag.String("dnn", "internet", "DNN")
	mix := flag.String("mix", "full", "full session, or only its pcf or chf operations")
	population := flag.String("population", "", "population JSON written by the seeder (empty: synthetic)")
	synthetic := flag.Int("subscribers", 1000, "synthetic population size when -population is empty")
	think := flag.Duration("think", 0, "mean pause between the operations of a session")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout")
	throttleWait := flag.Duration("throttle-wait", 2*time.Second,
		"a session whose update crossed the cap deletes its policy once the throttle arrived, waiting at most this long")
	listen := flag.String("notify-listen", "127.0.0.1:0", "address of the receiving SMF")
	grace := flag.Duration("notify-grace", 2*time.Second, "wait for late notifications after the run")
	seed := flag.Uint64("seed", 1, "shuffle seed of the population")
	part := flag.Int("part", 0, "use only the population members whose position modulo -parts is this")
	parts := flag.Int("parts", 1, "split the population into this many disjoint parts (one per repeated run)")
	out := flag.String("out", "", "write the JSON result here (default stdout)")
	printBodies := flag.Bool("print-bodies", false, "print one session's request bodies as JSON and exit")
	flag.Parse()
	if *printBodies {
		enc, _ := json.MarshalIndent(sampleBodies(), "", "  ")
		os.Stdout.Write(append(enc, '\n'))
		return
	}

	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if *conns < 1 || *streams < 1 || *concurrency < 1 || *duration <= 0 || *duration > time.Hour ||
		*warmup < 0 || *updates < 0 {
		fail(fmt.Errorf("bad arguments"))
	}
	if *mix != "full" && *mix != "pcf" && *mix != "chf" {
		fail(fmt.Errorf("unknown -mix %q", *mix))
	}
	if *mode != "closed" && *mode != "open" && *mode != "healthz" {
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
	pl, err := newPool(*target, *conns, *streams)
	if err != nil {
		fail(err)
	}
	trk := newTracker()
	notifyBase := ""
	if *mode != "healthz" {
		base, stop, err := startReceiver(*listen, trk)
		if err != nil {
			fail(err)
		}
		defer stop()
		notifyBase = base
	}
	var subs []*subscriber
	if *mode != "healthz" {
		if *parts < 1 || *part < 0 || *part >= *parts {
			fail(fmt.Errorf("-part must be in [0, -parts)"))
		}
		if subs, err = loadPopulation(*population, *synthetic, *seed, *part, *parts); err != nil {
			fail(err)
		}
	}
	r := &runner{
		p: params{updates: *updates, requestBytes: *reqBytes, usageBytes: *useBytes,
			ratingGroup: *rg, dnn: *dnn, think: *think, timeout: *timeout, throttleWait: *throttleWait,
			notifyBase: notifyBase, mode: *mode, mix: *mix},
		pool: pl, pick: &picker{subs: subs}, rec: newRecorder(), trk: trk,
	}
	for i := range *conns {
		r.smfIDs = append(r.smfIDs, fmt.Sprintf("5f0c1a2e-0000-4000-8000-%012d", i+1))
	}

	begin := time.Now()
	from := begin.Add(*warmup)
	to := from.Add(*duration)
	r.rec.setWindow(from, to)
	fmt.Fprintf(os.Stderr, "loadgen: %s loop against %s, %d conns x %d streams, window %s after %s warm-up\n",
		*mode, *target, *conns, *streams, *duration, *warmup)

	var wg sync.WaitGroup
	var inflight sync.WaitGroup
	var dropped int64
	var cpuFrom float64
	// Markers on stderr let the orchestrator sample the NF's CPU over the same window.
	var cpuTo float64
	windowBegun := make(chan struct{})
	windowEnded := make(chan struct{})
	time.AfterFunc(time.Until(from), func() {
		cpuFrom = cpuSeconds()
		fmt.Fprintln(os.Stderr, "loadgen: window begins")
		close(windowBegun)
	})
	time.AfterFunc(time.Until(to), func() {
		<-windowBegun
		cpuTo = cpuSeconds()
		fmt.Fprintln(os.Stderr, "loadgen: window ends")
		close(windowEnded)
	})
	switch *mode {
	case "closed", "healthz":
		// Sessions start spread over the first half of the warm-up: a cold NF is not hit
		// by all of them at once.
		for i := range *concurrency {
			delay := time.Duration(float64(*warmup) / 2 * float64(i) / float64(*concurrency))
			wg.Go(func() {
				time.Sleep(delay)
				for !r.stopping.Load() {
					if !r.session() {
						// A failing NF is not hammered in a tight loop.
						time.Sleep(50 * time.Millisecond)
					}
				}
			})
		}
	case "open":
		wg.Go(func() {
			sem := make(chan struct{}, *maxSessions)
			for i := 0; ; i++ {
				due := begin.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if r.stopping.Load() {
					return
				}
				select {
				case sem <- struct{}{}:
					inflight.Go(func() {
						defer func() { <-sem }()
						r.session()
					})
				default:
					dropped++
					r.rec.fail("session", "generator:max-sessions")
				}
			}
		})
	}

	// Progress once a second; the CPU count starts with the window.
	var progress []map[string]float64
	lastOps := int64(0)
	for now := range time.Tick(time.Second) {
		r.rec.mu.Lock()
		var ops, errs int64
		for _, v := range r.rec.lat {
			ops += int64(len(v))
		}
		for _, v := range r.rec.errs {
			errs += v
		}
		r.rec.mu.Unlock()
		el := now.Sub(begin).Seconds()
		progress = append(progress, map[string]float64{"t": round3(el), "ops_in_window": float64(ops),
			"errors": float64(errs), "sessions_started": float64(r.started.Load())})
		if int(el)%5 == 0 {
			fmt.Fprintf(os.Stderr, "loadgen: t=%3.0fs ops/s=%6d errors=%d sessions=%d\n",
				el, ops-lastOps, errs, r.started.Load())
		}
		lastOps = ops
		if now.After(to) {
			break
		}
	}
	<-windowEnded
	r.stopping.Store(true)
	wg.Wait()
	inflight.Wait()
	if *mode != "healthz" {
		time.Sleep(*grace)
	}
	pl.close()

	window := to.Sub(from).Seconds()
	res := result{
		Mode: *mode,
		Config: map[string]any{"target": *target, "conns": *conns, "streams": *streams,
			"concurrency": *concurrency, "rate": *rate, "duration_s": duration.Seconds(),
			"warmup_s": warmup.Seconds(), "updates": *updates, "request_bytes": *reqBytes,
			"usage_bytes": *useBytes, "mix": *mix, "think_s": think.Seconds(), "population": len(subs)},
		WindowS:      window,
		Ops:          map[string]latency{},
		Errors:       map[string]int64{},
		WarmupErrors: map[string]int64{},
		Outcomes:     map[string]int64{},
		Sessions: map[string]int64{"started": r.started.Load(), "completed": r.finished.Load(),
			"failed": r.failed.Load(), "dropped": dropped, "no_free_subscriber": r.noSub.Load()},
		ClientCPU:   map[string]float64{"seconds": round3(cpuTo - cpuFrom), "pct_of_one_core": round3((cpuTo - cpuFrom) / window * 100)},
		Connections: map[string]int64{"configured": int64(*conns), "dials": pl.dials()},
		Progress:    progress,
	}
	r.rec.mu.Lock()
	for op, s := range r.rec.lat {
		res.Ops[op] = summarize(s, window)
	}
	for k, v := range r.rec.errs {
		res.Errors[k] = v
		res.ErrorsTotal += v
	}
	for k, v := range r.rec.warmErrs {
		res.WarmupErrors[k] = v
	}
	for k, v := range r.rec.outcomes {
		res.Outcomes[k] = v
	}
	r.rec.mu.Unlock()
	if *mode != "healthz" {
		th, ns := trk.report()
		res.Throttle, res.Notifications = &th, &ns
	}
	enc, _ := json.MarshalIndent(res, "", "  ")
	if *out == "" {
		os.Stdout.Write(append(enc, '\n'))
	} else if err := os.WriteFile(*out, append(enc, '\n'), 0o644); err != nil {
		fail(err)
	}
}
