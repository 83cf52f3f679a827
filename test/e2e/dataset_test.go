package e2e

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batchkv/batchkv/internal/objstore"
	"github.com/batchkv/batchkv/internal/publish"
	"github.com/batchkv/batchkv/internal/store"
)

// The datasets: three versions (index 0, 1, 2 = v1, v2, v3) in which every
// value names its version, so that every reply can be attributed to the
// versions it is valid for. Keys come in the 7 non-empty subsets of the
// versions ("presence masks"): a key of mask 0b011 is in v1 and v2 and
// removed in v3, one of mask 0b110 is added in v2, and so on. A nil reply is
// valid exactly for the versions that lack the key.
const (
	nVersions      = 3
	datasetName    = "e2e"
	stringsPerMask = 150
	hashesPerMask  = 60
)

// versionNames sort in time order, as the syncer's "greatest complete
// version" needs.
var versionNames = [nVersions]string{"20261122T050001Z", "20261122T050002Z", "20261122T050003Z"}

// mask is a set of versions: bit i is version i.
type mask uint8

const allVersions mask = 1<<nVersions - 1

func (m mask) single() (int, bool) {
	for i := range nVersions {
		if m == 1<<i {
			return i, true
		}
	}
	return -1, false
}

func (m mask) String() string {
	var parts []string
	for i := range nVersions {
		if m&(1<<i) != 0 {
			parts = append(parts, fmt.Sprintf("v%d", i+1))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// key is one key of the universe and its value in each version (absent:
// the version's bit is clear in present).
type key struct {
	name    string
	hash    bool
	present mask
	str     [nVersions]string
	fields  [nVersions]map[string]string
}

// universe is every key of every version.
type universe struct {
	strings, hashes []*key
	byName          map[string]*key
}

func newUniverse() *universe {
	u := &universe{byName: map[string]*key{}}
	for m := mask(1); m <= allVersions; m++ {
		for i := range stringsPerMask {
			k := &key{name: fmt.Sprintf("s:%d:%d", m, i), present: m}
			for v := range nVersions {
				if m&(1<<v) != 0 {
					// Lengths differ between versions too, so a reply mixing
					// two versions' bytes could not pass as either.
					k.str[v] = fmt.Sprintf("v%d:%s:%s", v+1, k.name, strings.Repeat("x", 16+8*v+i%32))
				}
			}
			u.strings = append(u.strings, k)
			u.byName[k.name] = k
		}
		for i := range hashesPerMask {
			k := &key{name: fmt.Sprintf("h:%d:%d", m, i), hash: true, present: m}
			for v := range nVersions {
				if m&(1<<v) != 0 {
					f := map[string]string{"ver": fmt.Sprintf("v%d", v+1), "key": k.name}
					for j := range 2 + v + i%3 { // field counts differ by version
						f[fmt.Sprintf("f%d", j)] = fmt.Sprintf("v%d:%s:f%d", v+1, k.name, j)
					}
					k.fields[v] = f
				}
			}
			u.hashes = append(u.hashes, k)
			u.byName[k.name] = k
		}
	}
	return u
}

// matchString returns the versions for which GET key answering (val, isNil)
// is right.
func (k *key) matchString(val string, isNil bool) mask {
	var m mask
	for v := range nVersions {
		if k.present&(1<<v) == 0 {
			if isNil {
				m |= 1 << v
			}
		} else if !isNil && !k.hash && val == k.str[v] {
			m |= 1 << v
		}
	}
	return m
}

// matchHash returns the versions for which HGETALL key answering got is
// right (an absent key answers an empty map).
func (k *key) matchHash(got map[string]string) mask {
	var m mask
	for v := range nVersions {
		if k.present&(1<<v) == 0 {
			if len(got) == 0 {
				m |= 1 << v
			}
		} else if k.hash && maps.Equal(got, k.fields[v]) {
			m |= 1 << v
		}
	}
	return m
}

// writeVersion builds version v of the universe into a version directory.
func (u *universe) writeVersion(t *testing.T, v int) string {
	t.Helper()
	var entries []store.Entry
	for _, k := range u.strings {
		if k.present&(1<<v) != 0 {
			entries = append(entries, store.Entry{Key: []byte(k.name), Value: store.AppendString(nil, []byte(k.str[v]))})
		}
	}
	for _, k := range u.hashes {
		if k.present&(1<<v) == 0 {
			continue
		}
		// Field order is the input order; the test compares maps, so any
		// fixed order will do.
		names := []string{"ver", "key"}
		for j := range len(k.fields[v]) - 2 {
			names = append(names, fmt.Sprintf("f%d", j))
		}
		val := store.AppendHashHeader(nil, len(names))
		for _, f := range names {
			val = store.AppendHashField(val, []byte(f), []byte(k.fields[v][f]))
		}
		entries = append(entries, store.Entry{Key: []byte(k.name), Value: val})
	}
	dir := filepath.Join(t.TempDir(), versionNames[v])
	meta := &store.Meta{Name: datasetName, Version: versionNames[v], BuiltAt: time.Date(2026, 11, 22, 5, 0, v, 0, time.UTC)}
	if err := store.WriteVersion(context.Background(), dir, meta, entries); err != nil {
		t.Fatal(err)
	}
	return dir
}

// publishVersion uploads a built version with the real publisher.
func publishVersion(t *testing.T, dst objstore.Store, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := publish.Publish(ctx, dir, dst, publish.Options{}); err != nil {
		t.Fatalf("publish %s: %v", dir, err)
	}
}
