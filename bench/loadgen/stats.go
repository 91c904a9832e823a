package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// recorder keeps every latency sample of the measurement window (a run of a few minutes
// at a few thousand operations per second is a few million float32s: exact percentiles,
// no histogram error) and counts errors by cause.
type recorder struct {
	mu       sync.Mutex
	from, to time.Time // the measurement window; samples outside it are not kept
	lat      map[string][]float32
	errs     map[string]int64 // failures from the window's start on
	warmErrs map[string]int64 // failures during the warm-up
	outcomes map[string]int64
}

func newRecorder() *recorder {
	return &recorder{lat: map[string][]float32{}, errs: map[string]int64{},
		warmErrs: map[string]int64{}, outcomes: map[string]int64{}}
}

func (r *recorder) setWindow(from, to time.Time) {
	r.mu.Lock()
	r.from, r.to = from, to
	r.mu.Unlock()
}

func (r *recorder) inWindow(t time.Time) bool {
	return !t.Before(r.from) && !t.After(r.to)
}

// ok records one completed operation that ended at `end`.
func (r *recorder) ok(op string, start, end time.Time) {
	r.mu.Lock()
	if r.inWindow(end) {
		r.lat[op] = append(r.lat[op], float32(end.Sub(start).Seconds()*1e3))
	}
	r.mu.Unlock()
}

// fail records one failed operation: during the warm-up apart, afterwards (in the window
// or while draining at the end) as an error of the run, so that nothing hides.
func (r *recorder) fail(op, cause string) {
	now := time.Now()
	r.mu.Lock()
	if now.Before(r.from) {
		r.warmErrs[op+" "+cause]++
	} else {
		r.errs[op+" "+cause]++
	}
	r.mu.Unlock()
}

// outcome counts a notable but successful answer (e.g. a result code per rating group).
func (r *recorder) outcome(key string) {
	r.mu.Lock()
	r.outcomes[key]++
	r.mu.Unlock()
}

type latency struct {
	Count int64   `json:"count"`
	PerS  float64 `json:"per_s"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(samples []float32, windowS float64) latency {
	if len(samples) == 0 {
		return latency{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += float64(v)
	}
	out := latency{
		Count: int64(len(s)),
		Mean:  round3(sum / float64(len(s))),
		P50:   round3(pct(s, 0.50)),
		P95:   round3(pct(s, 0.95)),
		P99:   round3(pct(s, 0.99)),
		Max:   round3(float64(s[len(s)-1])),
	}
	if windowS > 0 {
		out.PerS = round3(float64(len(s)) / windowS)
	}
	return out
}

// pct is the nearest-rank percentile of sorted samples.
func pct(sorted []float32, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i])
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
