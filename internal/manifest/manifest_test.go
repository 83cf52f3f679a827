package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteRead(t *testing.T) {
	root := t.TempDir()
	if _, err := Read(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of empty root: %v, want ErrNotExist", err)
	}
	m := &Manifest{Dataset: "features", Version: "v2", Previous: "v1", InstalledAt: time.Unix(1700000000, 0).UTC()}
	if err := Write(root, m); err != nil {
		t.Fatal(err)
	}
	got, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "v2" || got.Previous != "v1" || got.Format != FormatVersion || !got.InstalledAt.Equal(m.InstalledAt) {
		t.Fatalf("read back %+v", got)
	}
	// No temp files left behind.
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Fatalf("root holds %d entries, want only the manifest", len(ents))
	}
	if VersionDir(root, "v2") != filepath.Join(root, "versions", "v2") {
		t.Fatal("VersionDir")
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, "invalid manifest"},
		{`{"format":1}`, "version"},
		{`{"format":1,"version":"../x"}`, "not allowed"},
		{`{"format":1,"version":"v","previous":"a/b"}`, "previous"},
		{`{"format":2,"version":"v"}`, "format 2"},
		{`{"format":1,"version":"v"} {}`, "trailing"},
		{`{"format":1,"version":7}`, "invalid manifest"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid with %q", tt.in, err, tt.want)
		}
	}
	if _, err := Parse([]byte(`{"format":1,"version":"v1","unknown":true}`)); err != nil {
		t.Fatalf("unknown field rejected: %v", err)
	}
	if err := Write(t.TempDir(), &Manifest{Version: ".."}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Write of invalid manifest: %v", err)
	}
}

func TestReadTooBig(t *testing.T) {
	root := t.TempDir()
	big := `{"format":1,"version":"v","pad":"` + strings.Repeat("x", MaxBytes) + `"}`
	if err := os.WriteFile(filepath.Join(root, FileName), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(root); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized manifest: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"format":1,"dataset":"d","version":"v2","previous":"v1","installed_at":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"format":1,"version":"..","activate_at":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if strings.ContainsAny(m.Version, "/\\") || m.Version == ".." || m.Version == "." {
			t.Fatalf("unsafe version accepted: %q", m.Version)
		}
	})
}
