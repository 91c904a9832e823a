package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"strconv"
	"sync/atomic"
	"time"
)

const (
	chfBase = "/nchf-convergedcharging/v3/chargingdata"
	pcfBase = "/npcf-smpolicycontrol/v1/sm-policies"
)

// subscriber is one member of the seeded population. `used` (bytes reported so far in
// this run) is only touched by the session holding `busy`.
type subscriber struct {
	supi     string
	mcc, mnc string
	capBytes int64 // full-speed allowance if this subscriber is on a small cap; 0 otherwise
	used     int64
	busy     atomic.Bool
}

// populationFile is what the seeder writes: groups of subscribers with consecutive SUPIs.
type populationFile struct {
	Groups []struct {
		SupiPrefix string `json:"supi_prefix"` // e.g. "imsi-00101"
		Digits     int    `json:"digits"`      // width of the zero-padded index
		First      int    `json:"first"`
		Count      int    `json:"count"`
		HomePlmn   string `json:"home_plmn"`
		CapBytes   int64  `json:"cap_bytes"`
	} `json:"groups"`
}

// loadPopulation reads the population, keeps the members whose position modulo `parts` is
// `part` (repeated runs against one seeded database use disjoint subscribers, so that each
// run knows every balance it touches) and shuffles them.
func loadPopulation(file string, synthetic int, seed uint64, part, parts int) ([]*subscriber, error) {
	var subs []*subscriber
	if file == "" {
		for i := 0; i < synthetic; i++ {
			subs = append(subs, &subscriber{supi: fmt.Sprintf("imsi-00101%010d", i), mcc: "001", mnc: "01"})
		}
	} else {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var pf populationFile
		if err := json.Unmarshal(raw, &pf); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, g := range pf.Groups {
			if len(g.HomePlmn) < 5 {
				return nil, fmt.Errorf("%s: bad home_plmn %q", file, g.HomePlmn)
			}
			for i := g.First; i < g.First+g.Count; i++ {
				subs = append(subs, &subscriber{
					supi: fmt.Sprintf("%s%0*d", g.SupiPrefix, g.Digits, i),
					mcc:  g.HomePlmn[:3], mnc: g.HomePlmn[3:], capBytes: g.CapBytes,
				})
			}
		}
	}
	kept := subs[:0]
	for i, s := range subs {
		if i%parts == part {
			kept = append(kept, s)
		}
	}
	subs = kept
	if len(subs) == 0 {
		return nil, fmt.Errorf("empty population")
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	return subs, nil
}

type picker struct {
	subs []*subscriber
	next atomic.Uint64
}

// take returns a subscriber not in a session now (nil if all are busy).
func (p *picker) take() *subscriber {
	for range len(p.subs) {
		s := p.subs[p.next.Add(1)%uint64(len(p.subs))]
		if s.busy.CompareAndSwap(false, true) {
			return s
		}
	}
	return nil
}

type params struct {
	updates      int
	requestBytes int64
	usageBytes   int64
	ratingGroup  int
	dnn          string
	think        time.Duration
	timeout      time.Duration
	throttleWait time.Duration
	notifyBase   string
	mode         string
	mix          string // "full", "pcf" (policy create+delete only) or "chf" (charging only)
}

type runner struct {
	p        params
	pool     *pool
	pick     *picker
	rec      *recorder
	trk      *tracker
	stopping atomic.Bool
	seq      atomic.Uint64
	started  atomic.Int64
	finished atomic.Int64
	failed   atomic.Int64
	noSub    atomic.Int64
	smfIDs   []string
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// call sends one request and records its latency or its failure. It returns ok=false
// (and records a cause) unless the status is `want`.
func (r *runner) call(c *conn, op, method, p string, body []byte, want int) (reply, time.Time, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), r.p.timeout)
	defer cancel()
	start := time.Now()
	rep, cause, err := c.do(ctx, r.pool, method, p, body)
	end := time.Now()
	if err != nil {
		r.rec.fail(op, cause)
		return rep, end, false
	}
	if rep.status != want {
		r.rec.fail(op, httpCause(rep))
		return rep, end, false
	}
	r.rec.ok(op, start, end)
	return rep, end, true
}

func httpCause(rep reply) string {
	var pd struct {
		Cause            string `json:"cause"`
		InvocationResult *struct {
			Error *struct {
				Cause string `json:"cause"`
			} `json:"error"`
		} `json:"invocationResult"`
	}
	_ = json.Unmarshal(rep.body, &pd)
	cause := pd.Cause
	if cause == "" && pd.InvocationResult != nil && pd.InvocationResult.Error != nil {
		cause = pd.InvocationResult.Error.Cause
	}
	if cause == "" {
		cause = "-"
	}
	return "http:" + strconv.Itoa(rep.status) + ":" + cause
}

func idFromLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Path == "" {
		return ""
	}
	return path.Base(u.Path)
}

func (r *runner) pause() bool {
	if r.p.think > 0 {
		time.Sleep(r.p.think/2 + rand.N(r.p.think))
	}
	return !r.stopping.Load()
}

// session plays one PDU session of one SMF. It returns when done or when the run stops,
// false if an operation failed.
func (r *runner) session() bool {
	r.started.Add(1)
	c := r.pool.pick()
	if r.p.mode == "healthz" {
		if _, _, ok := r.call(c, "healthz", "GET", "/healthz", nil, 200); !ok {
			r.failed.Add(1)
			return false
		}
		r.finished.Add(1)
		return true
	}
	sub := r.pick.take()
	if sub == nil {
		r.noSub.Add(1)
		r.rec.fail("session", "generator:population-exhausted")
		return false
	}
	defer sub.busy.Store(false)
	n := r.seq.Add(1)
	sid := "s" + strconv.FormatUint(n, 10)
	smf := r.smfIDs[c.id%len(r.smfIDs)]
	if r.run(c, sub, sid, smf, n) {
		r.finished.Add(1)
		return true
	}
	if !r.stopping.Load() {
		r.failed.Add(1)
	}
	return false
}

type chfAnswer struct {
	MUI []struct {
		RatingGroup int    `json:"ratingGroup"`
		ResultCode  string `json:"resultCode"`
		GrantedUnit *struct {
			TotalVolume int64 `json:"totalVolume"`
		} `json:"grantedUnit"`
	} `json:"multipleUnitInformation"`
}

// grant reads the granted volume for our rating group and counts non-success results.
func (r *runner) grant(op string, body []byte) int64 {
	var a chfAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		r.rec.outcome(op + " unparsable-body")
		return 0
	}
	var g int64
	for _, m := range a.MUI {
		if m.RatingGroup != r.p.ratingGroup {
			continue
		}
		if m.ResultCode != "" && m.ResultCode != "SUCCESS" {
			r.rec.outcome(op + " " + m.ResultCode)
		}
		if m.GrantedUnit != nil {
			g = m.GrantedUnit.TotalVolume
		}
	}
	return g
}

// bodies builds the request bodies of one session (TS 29.512 SmPolicyContextData,
// SmPolicyDeleteData; TS 32.291 ChargingDataRequest).
type bodies struct {
	sub          *subscriber
	sid, smf     string
	n            uint64
	notify, dnn  string
	ratingGroup  int
	requestBytes int64
	seq          int
}

func (b *bodies) pduID() int { return int(b.n%15) + 1 }

func (b *bodies) plmn() string { return fmt.Sprintf(`{"mcc":%q,"mnc":%q}`, b.sub.mcc, b.sub.mnc) }

func (b *bodies) pcfCreate() []byte {
	n := b.n
	ip := fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff|1)
	return fmt.Appendf(nil, `{"supi":%q,"pduSessionId":%d,"pduSessionType":"IPV4","dnn":%q,`+
		`"notificationUri":"%s/smf/pcf/%s","sliceInfo":{"sst":1},`+
		`"servingNetwork":%s,"accessType":"3GPP_ACCESS","ratType":"NR",`+
		`"ipv4Address":%q,"subsSessAmbr":{"uplink":"100 Mbps","downlink":"200 Mbps"},`+
		`"subsDefQos":{"5qi":9,"arp":{"priorityLevel":8,"preemptCap":"NOT_PREEMPT",`+
		`"preemptVuln":"NOT_PREEMPTABLE"},"priorityLevel":8}}`,
		b.sub.supi, b.pduID(), b.dnn, b.notify, b.sid, b.plmn(), ip)
}

func (b *bodies) chfHead() []byte {
	plmn := b.plmn()
	return fmt.Appendf(nil, `{"subscriberIdentifier":%q,"nfConsumerIdentification":`+
		`{"nodeFunctionality":"SMF","nFName":%q,"nFPLMNID":%s},`+
		`"invocationTimeStamp":%q,"invocationSequenceNumber":%d,`+
		`"notifyUri":"%s/smf/chf/%s","pDUSessionChargingInformation":{"chargingId":%d,`+
		`"pduSessionInformation":{"pduSessionID":%d,"dnnId":%q,"ratType":"NR",`+
		`"pduType":"IPV4","servingCNPlmnId":%s,"hPlmnId":%s,`+
		`"networkSlicingInfo":{"sNSSAI":{"sst":1}}}},`,
		b.sub.supi, b.smf, plmn, stamp(time.Now()), b.seq, b.notify, b.sid, b.n&0xffffffff,
		b.pduID(), b.dnn, plmn, plmn)
}

func (b *bodies) chfCreate() []byte {
	return append(b.chfHead(), fmt.Appendf(nil,
		`"multipleUnitUsage":[{"ratingGroup":%d,"requestedUnit":{"totalVolume":%d}}]}`,
		b.ratingGroup, b.requestBytes)...)
}

// chfUsage is an update (final=false) or a release (final=true) reporting `used` bytes.
func (b *bodies) chfUsage(used int64, final bool) []byte {
	up := used / 5
	container := fmt.Sprintf(`{"localSequenceNumber":%d,"totalVolume":%d,"uplinkVolume":%d,`+
		`"downlinkVolume":%d,"quotaManagementIndicator":"ONLINE_CHARGING"}`,
		b.seq, used, up, used-up)
	req := ""
	if !final {
		req = fmt.Sprintf(`"requestedUnit":{"totalVolume":%d},`, b.requestBytes)
	}
	return append(b.chfHead(), fmt.Appendf(nil,
		`"multipleUnitUsage":[{"ratingGroup":%d,%s"usedUnitContainer":[%s]}]}`,
		b.ratingGroup, req, container)...)
}

func (b *bodies) pcfDelete() []byte {
	return fmt.Appendf(nil, `{"servingNetwork":%s}`, b.plmn())
}

func (r *runner) run(c *conn, sub *subscriber, sid, smf string, n uint64) bool {
	b := &bodies{sub: sub, sid: sid, smf: smf, n: n, notify: r.p.notifyBase, dnn: r.p.dnn,
		ratingGroup: r.p.ratingGroup, requestBytes: r.p.requestBytes}
	// 1. PCF create
	policy := ""
	if r.p.mix != "chf" {
		var ok bool
		if policy, ok = r.createPolicy(c, b); !ok {
			return false
		}
	}
	if r.p.mix == "pcf" {
		return r.pause() && r.deletePolicy(c, b, policy)
	}

	// 2. CHF create (with an initial request for quota)
	if !r.pause() {
		return false
	}
	rep, _, ok := r.call(c, "chf_create", "POST", chfBase, b.chfCreate(), 201)
	if !ok {
		return false
	}
	ref := idFromLocation(rep.location)
	if ref == "" {
		r.rec.fail("chf_create", "protocol:no-location")
		return false
	}
	granted := r.grant("chf_create", rep.body)

	// 3. K updates, each reporting what the last grant allowed and asking for more.
	for range r.p.updates {
		if !r.pause() {
			return false
		}
		b.seq++
		used := min(granted, r.p.usageBytes)
		// Only a session with a policy gets a throttle notification.
		crosses := r.p.mix == "full" && sub.capBytes > 0 && sub.used < sub.capBytes &&
			sub.used+used >= sub.capBytes
		sub.used += used
		body := b.chfUsage(used, false)
		if crosses {
			r.trk.crossingSent(sid, time.Now())
		}
		rep, end, ok := r.call(c, "chf_update", "POST", chfBase+"/"+ref+"/update", body, 200)
		if crosses {
			r.trk.crossingAnswered(sid, end)
		}
		if !ok {
			return false
		}
		granted = r.grant("chf_update", rep.body)
	}

	// 4. CHF release with the final usage
	if !r.pause() {
		return false
	}
	b.seq++
	used := min(granted, r.p.usageBytes)
	sub.used += used
	if _, _, ok = r.call(c, "chf_release", "POST", chfBase+"/"+ref+"/release",
		b.chfUsage(used, true), 204); !ok {
		return false
	}

	// 5. PCF delete. A real PDU session outlives its cap crossing; one that crossed here
	// keeps its policy until the throttle arrived (at most -throttle-wait), or the PCF
	// would have no policy left to throttle.
	if r.p.mix == "chf" {
		return true
	}
	r.trk.waitNotified(sid, r.p.throttleWait, r.stopping.Load)
	return r.pause() && r.deletePolicy(c, b, policy)
}

func (r *runner) deletePolicy(c *conn, b *bodies, policy string) bool {
	_, _, ok := r.call(c, "pcf_delete", "POST", pcfBase+"/"+policy+"/delete", b.pcfDelete(), 204)
	return ok
}

// createPolicy creates the session's SM policy and remembers the speed it was given.
func (r *runner) createPolicy(c *conn, b *bodies) (string, bool) {
	rep, _, ok := r.call(c, "pcf_create", "POST", pcfBase, b.pcfCreate(), 201)
	if !ok {
		return "", false
	}
	policy := idFromLocation(rep.location)
	if policy == "" {
		r.rec.fail("pcf_create", "protocol:no-location")
		return "", false
	}
	var dec struct {
		SessRules map[string]struct {
			AuthSessAmbr *struct {
				Downlink string `json:"downlink"`
			} `json:"authSessAmbr"`
		} `json:"sessRules"`
	}
	_ = json.Unmarshal(rep.body, &dec)
	ambr := ""
	for _, sr := range dec.SessRules {
		if sr.AuthSessAmbr != nil {
			ambr = sr.AuthSessAmbr.Downlink
		}
	}
	r.trk.policyCreated(b.sid, ambr)
	return policy, true
}

// sampleBodies is one session's requests without sending them (-print-bodies), for the
// conformance check of the generator against the 3GPP documents.
func sampleBodies() []map[string]any {
	sub := &subscriber{supi: "imsi-001010000000042", mcc: "001", mnc: "01"}
	b := &bodies{sub: sub, sid: "s42", smf: "5f0c1a2e-0000-4000-8000-000000000001", n: 42,
		notify: "http://127.0.0.1:9999", dnn: "internet", ratingGroup: 10, requestBytes: 1 << 20}
	out := []map[string]any{}
	add := func(op, p string, body []byte) {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			panic(fmt.Sprintf("%s: invalid JSON: %v\n%s", op, err, body))
		}
		out = append(out, map[string]any{"op": op, "method": "POST", "path": p, "body": v})
	}
	add("pcf_create", pcfBase, b.pcfCreate())
	add("chf_create", chfBase, b.chfCreate())
	b.seq++
	add("chf_update", chfBase+"/ref-1/update", b.chfUsage(1<<20, false))
	b.seq++
	add("chf_release", chfBase+"/ref-1/release", b.chfUsage(1<<19, true))
	add("pcf_delete", pcfBase+"/pol-1/delete", b.pcfDelete())
	return out
}
