package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Observation is a place where what the NF sent does not survive a decode and re-encode
// through free5gc's generated model: a member the model does not know, a value its Go type
// cannot carry, or a zero value its `omitempty` drops. These are evidence of model
// disagreements; whether they count as failures is decided by the checks, not here.
type Observation struct {
	Exchange string `json:"exchange"`
	Kind     string `json:"kind"` // unknown-member | zero-dropped | changed | decode-error
	Path     string `json:"path"`
	Detail   string `json:"detail"`
}

func decodeAny(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

func sameScalar(a, b any) bool {
	if fmt.Sprint(a) == fmt.Sprint(b) {
		return true
	}
	if na, ok := a.(json.Number); ok {
		if nb, ok := b.(json.Number); ok {
			fa, ea := na.Float64()
			fb, eb := nb.Float64()
			return ea == nil && eb == nil && fa == fb
		}
	}
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			ta, ea := time.Parse(time.RFC3339Nano, sa)
			tb, eb := time.Parse(time.RFC3339Nano, sb)
			return ea == nil && eb == nil && ta.Equal(tb)
		}
	}
	return false
}

func short(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func walk(exchange, path string, raw, round any, out *[]Observation) {
	switch r := raw.(type) {
	case map[string]any:
		o, _ := round.(map[string]any)
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			got, ok := o[k]
			if !ok {
				kind := "unknown-member"
				if isZero(r[k]) {
					kind = "zero-dropped"
				}
				*out = append(*out, Observation{exchange, kind, p, "sent " + short(r[k]) +
					", gone after decoding into the free5gc model"})
				continue
			}
			walk(exchange, p, r[k], got, out)
		}
	case []any:
		o, _ := round.([]any)
		if len(o) != len(r) {
			*out = append(*out, Observation{exchange, "changed", path,
				fmt.Sprintf("array of %d became %d", len(r), len(o))})
			return
		}
		for i := range r {
			walk(exchange, fmt.Sprintf("%s[%d]", path, i), r[i], o[i], out)
		}
	default:
		if !sameScalar(raw, round) {
			*out = append(*out, Observation{exchange, "changed", path,
				"sent " + short(raw) + ", model gives " + short(round)})
		}
	}
}

// roundTrip decodes raw into model (a pointer to a fresh free5gc model), encodes it again
// and reports every member that did not come back unchanged.
func roundTrip(exchange string, raw []byte, model any) []Observation {
	var out []Observation
	if len(bytes.TrimSpace(raw)) == 0 {
		return out
	}
	if err := json.Unmarshal(raw, model); err != nil {
		return append(out, Observation{exchange, "decode-error", "$", err.Error()})
	}
	again, err := json.Marshal(model)
	if err != nil {
		return append(out, Observation{exchange, "decode-error", "$", err.Error()})
	}
	a, err := decodeAny(raw)
	if err != nil {
		return append(out, Observation{exchange, "decode-error", "$", err.Error()})
	}
	b, _ := decodeAny(again)
	walk(exchange, "$", a, b, &out)
	return out
}

// pathsOf lists observation paths, for compact messages.
func pathsOf(obs []Observation) string {
	ps := make([]string, 0, len(obs))
	for _, o := range obs {
		ps = append(ps, o.Kind+" "+o.Path)
	}
	return strings.Join(ps, ", ")
}
