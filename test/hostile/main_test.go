// Package hostile runs a batchkv-server binary against hostile and broken
// clients, TLS and AUTH: each test checks what the offender gets, that a
// well-behaved client keeps being served meanwhile, and that the server's
// memory stays bounded.
//
// HOSTILE_LONG=1 runs the long forms (10,000 held connections, KEYS on a
// 10M-key dataset).
package hostile

import (
	"os"
	"testing"

	"github.com/batchkv/batchkv/test/hostile/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// long reports whether the long forms run.
func long() bool { return os.Getenv("HOSTILE_LONG") != "" }
