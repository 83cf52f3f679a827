package tool

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressBars(t *testing.T) {
	var out bytes.Buffer
	bars := newProgressBars(&out, func(phase string) (string, bool) { return "phase-" + phase, phase == "read" })
	bars.Update("read", 0, 4<<20)
	bars.Update("read", 4<<20, 4<<20)
	bars.Update("merge", 3, 8)
	bars.Update("merge", 8, 8)
	bars.Finish()
	s := out.String()
	for _, want := range []string{"phase-read", "100%", "MB", "phase-merge", "8/8"} {
		if !strings.Contains(s, want) {
			t.Errorf("progress output lacks %q:\n%q", want, s)
		}
	}
	if isTerminal(&out) {
		t.Fatal("a buffer is not a terminal")
	}
}
