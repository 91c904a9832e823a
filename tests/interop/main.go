// Command interop drives the NF's Nchf_ConvergedCharging v3 and Npcf_SMPolicyControl v1
// APIs with free5gc's spec-generated Go clients and models, as an SMF built on them would:
// PCF create -> CHF create with a requested unit -> CHF updates with used units -> CHF
// release -> PCF delete, plus the error answers an SMF must be able to decode.
//
// It owns only the client side of that conversation and never reaches into the NF or its
// database: everything it knows comes from HTTP/2 answers. Request bodies are built from
// free5gc's models only (no hand-written JSON). It prints one JSON summary on stdout and
// exits 1 if any check failed, 2 on bad usage.
//
//	go build -o /tmp/interop . && /tmp/interop -sbi http://127.0.0.1:8000 -supi imsi-001010000000001
//
// The subscriber must exist in the NF (provisioning API on the OAM port). With -token the
// requests carry that OAuth2 access token (an NF with oauth2.required refuses them without).
// tests/e2e/test_interop_free5gc.py builds, caches and runs it against a real NF.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/free5gc/openapi"
	"golang.org/x/oauth2"
)

type config struct {
	sbi       string
	supi      string
	plmn      string
	rg        int
	updates   int
	request   int
	usage     int
	notify    string
	timeout   time.Duration
	pduSessID int
	token     string
}

// Check is one assertion on a decoded answer.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Summary is what the program prints.
type Summary struct {
	OK              bool              `json:"ok"`
	Client          string            `json:"client"`
	Subscriber      string            `json:"subscriber"`
	SmPolicyID      string            `json:"smPolicyId,omitempty"`
	PcfLocation     string            `json:"pcfLocation,omitempty"`
	SessAmbr        map[string]string `json:"sessAmbr,omitempty"`
	ChargingDataRef string            `json:"chargingDataRef,omitempty"`
	ChfLocation     string            `json:"chfLocation,omitempty"`
	Grants          []int64           `json:"grants"`
	UsedBytesTotal  int64             `json:"usedBytesTotal"`
	UnknownRef      map[string]any    `json:"unknownRef,omitempty"`
	Probes          map[string]any    `json:"probes"`
	Failures        []string          `json:"failures"`
	Checks          []Check           `json:"checks"`
	Observations    []Observation     `json:"observations"`
	Exchanges       []*Exchange       `json:"exchanges"`
}

var plmnRe = regexp.MustCompile(`^\d{5,6}$`)

func main() {
	var c config
	flag.StringVar(&c.sbi, "sbi", "", "the NF's SBI base URL, e.g. http://127.0.0.1:8000")
	flag.StringVar(&c.supi, "supi", "", "a subscriber provisioned in the NF, e.g. imsi-001010000000001")
	flag.StringVar(&c.plmn, "plmn", "00101", "the SMF's and serving PLMN (MCC+MNC)")
	flag.IntVar(&c.rg, "rating-group", 10, "rating group to charge (> 0: free5gc drops 0)")
	flag.IntVar(&c.updates, "updates", 3, "number of CHF updates between create and release")
	flag.IntVar(&c.request, "request-bytes", 4<<20, "requestedUnit.totalVolume per request")
	flag.IntVar(&c.usage, "usage-bytes", 1500000, "bytes used (at most the grant) per report")
	flag.StringVar(&c.notify, "notify-uri", "http://127.0.0.1:9/smf", "SMF callback base URI")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&c.pduSessID, "pdu-session-id", 5, "PDU session id (1..255)")
	flag.StringVar(&c.token, "token", "", "OAuth2 access token; the generated clients send it as Authorization: Bearer")
	flag.Parse()
	if c.sbi == "" || c.supi == "" || !plmnRe.MatchString(c.plmn) || c.updates < 1 ||
		c.rg < 1 || c.request < 1 || c.usage < 1 || c.pduSessID < 1 || c.pduSessID > 254 {
		flag.Usage()
		os.Exit(2)
	}
	c.sbi = strings.TrimRight(c.sbi, "/")

	ctx, cancel := context.WithTimeout(context.Background(), 20*c.timeout)
	defer cancel()
	if c.token != "" {
		// The generated clients' own OAuth2 hook: a token source in the context.
		ctx = context.WithValue(ctx, openapi.ContextOAuth2,
			oauth2.StaticTokenSource(&oauth2.Token{AccessToken: c.token, TokenType: "Bearer"}))
	}
	r := newRun(c)
	r.flow(ctx)

	s := r.sum
	s.Failures = []string{}
	for _, ch := range s.Checks {
		if !ch.OK {
			s.Failures = append(s.Failures, ch.Name+": "+ch.Detail)
		}
	}
	s.OK = len(s.Failures) == 0
	s.Exchanges = r.rec.log
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !s.OK {
		os.Exit(1)
	}
}
