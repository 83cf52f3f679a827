package publish_test

import (
	"encoding/json"
	"testing"

	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/release"
)

// FuzzParsePointer: a pointer is either refused or names a valid version
// and survives a round trip.
func FuzzParsePointer(f *testing.F) {
	f.Add([]byte(`{"version":"20261122T000000Z","pinned_at":"2026-11-22T00:00:00Z"}`))
	f.Add([]byte(`{"version":"../x"}`))
	f.Add([]byte(`{"version":"v1"} {}`))
	f.Add([]byte(`{"version":"v1","extra":[1,2]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := publish.ParsePointer(b)
		if err != nil {
			return
		}
		if err := release.ValidName(p.Version); err != nil {
			t.Fatalf("accepted invalid version %q", p.Version)
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := publish.ParsePointer(out)
		if err != nil || q.Version != p.Version || !q.PinnedAt.Equal(p.PinnedAt) {
			t.Fatalf("round trip: %+v -> %s -> %+v, %v", p, out, q, err)
		}
	})
}
