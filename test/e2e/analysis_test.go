package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestMatch checks the attribution of single replies: each value belongs to
// exactly its version, and a nil (or empty hash) to the versions lacking the
// key.
func TestMatch(t *testing.T) {
	u := newUniverse()
	s12 := u.byName["s:3:5"] // v1 and v2, removed in v3
	h23 := u.byName["h:6:1"] // added in v2
	tests := []struct {
		name string
		got  mask
		want mask
	}{
		{"v1 value", s12.matchString(s12.str[0], false), 0b001},
		{"v2 value", s12.matchString(s12.str[1], false), 0b010},
		{"nil", s12.matchString("", true), 0b100},
		{"foreign value", s12.matchString(strings.Replace(s12.str[0], "v1:", "v2:", 1), false), 0},
		{"another key's value", s12.matchString(u.byName["s:3:6"].str[0], false), 0},
		{"hash v2", h23.matchHash(h23.fields[1]), 0b010},
		{"hash v3", h23.matchHash(h23.fields[2]), 0b100},
		{"hash absent", h23.matchHash(map[string]string{}), 0b001},
		{"hash mixed", h23.matchHash(map[string]string{"ver": "v2", "key": h23.name}), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	for v := range nVersions {
		if n := u.count(v); n != 4*(stringsPerMask+hashesPerMask) {
			t.Errorf("version %d has %d keys", v, n)
		}
	}
}

// TestAnalyze checks that the swap-order analysis finds what it must: a
// connection going back to an older version, and a batch sent after a newer
// version was seen elsewhere but answered from an older one.
func TestAnalyze(t *testing.T) {
	ms := time.Millisecond
	seq := func(masks ...mask) *loadClient {
		lc := &loadClient{}
		for i, m := range masks {
			start := time.Duration(i*10) * ms
			lc.samples = append(lc.samples, sample{start: start, end: start + ms, m: m})
		}
		return lc
	}
	tests := []struct {
		name       string
		clients    []*loadClient
		violations int
	}{
		{"in order", []*loadClient{seq(0b001, 0b001, 0b010, 0b100, 0b010)}, 0},
		{"skips a phase", []*loadClient{seq(0b001, 0b100, 0b010)}, 0},
		{"ambiguous replies", []*loadClient{seq(0b001, 0b110, 0b100, 0b011, 0b010)}, 0},
		// Both checks see these: the connection's order, and the order
		// across connections.
		{"back to v1", []*loadClient{seq(0b001, 0b010, 0b001)}, 2},
		{"v2 after the pin, then v3 again", []*loadClient{seq(0b001, 0b010, 0b100, 0b010, 0b100)}, 2},
		// The first client sees v2 at +11 ms; the second sends at +20 ms and
		// is answered from v1.
		{"older version after a newer was seen", []*loadClient{seq(0b001, 0b010), seq(0b001, 0b001, 0b001)}, 1},
	}
	for _, tt := range tests {
		a := analyze(tt.clients, []int{0, 1, 2, 1})
		if a.nViolation != tt.violations {
			t.Errorf("%s: %d violations %q, want %d", tt.name, a.nViolation, a.violations, tt.violations)
		}
	}
}
