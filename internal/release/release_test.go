package release

import (
	"errors"
	"strings"
	"testing"

	"github.com/batchkv/batchkv/internal/store"
)

const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func valid() *Release {
	return &Release{
		Format:  FormatVersion,
		Dataset: "features",
		Version: "20261122T000000Z",
		Files: []File{
			{Path: "dataset.json", Size: 10, SHA256: sum},
			{Path: "db/000004.sst", Size: 1000, SHA256: sum},
			{Path: "db/MANIFEST-000001", Size: 100, SHA256: sum},
		},
		Meta: &store.Meta{Format: store.FormatVersion, Name: "features", Version: "20261122T000000Z", Keys: 1, Strings: 1},
	}
}

func TestRoundTrip(t *testing.T) {
	b, err := valid().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalSize() != 1110 || len(r.Files) != 3 || r.Meta.Keys != 1 {
		t.Fatalf("parsed %+v", r)
	}
	// Unknown fields are ignored.
	b = []byte(strings.Replace(string(b), `"format": 1,`, `"format": 1, "future_field": {"x": [1]},`, 1))
	if _, err := Parse(b); err != nil {
		t.Fatalf("unknown field rejected: %v", err)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *Release)
		want   string
	}{
		{"dotdot", func(r *Release) { r.Files[1].Path = "../../etc/x" }, `name ".." is not allowed`},
		{"dotdot inside", func(r *Release) { r.Files[1].Path = "db/../../x" }, "relative and clean"},
		{"absolute", func(r *Release) { r.Files[1].Path = "/etc/passwd" }, "relative and clean"},
		{"backslash", func(r *Release) { r.Files[1].Path = `db\..\x` }, "not allowed"},
		{"dot element", func(r *Release) { r.Files[1].Path = "db/./x" }, "relative and clean"},
		{"trailing slash", func(r *Release) { r.Files[1].Path = "db/" }, "relative and clean"},
		{"empty path", func(r *Release) { r.Files[1].Path = "" }, "1 to"},
		{"nul", func(r *Release) { r.Files[1].Path = "db/a\x00b" }, "not allowed"},
		{"too deep", func(r *Release) { r.Files[1].Path = "a/b/c/d/e" }, "too deep"},
		{"duplicate", func(r *Release) { r.Files[2].Path = r.Files[1].Path }, "listed twice"},
		{"case duplicate", func(r *Release) { r.Files[2].Path = "DB/000004.sst" }, "listed twice"},
		{"file and dir", func(r *Release) { r.Files[2].Path = "db" }, "both a file and a directory"},
		{"negative size", func(r *Release) { r.Files[1].Size = -1 }, "out of range"},
		{"huge size", func(r *Release) { r.Files[1].Size = MaxFileSize + 1 }, "out of range"},
		{"bad sha", func(r *Release) { r.Files[1].SHA256 = "xyz" }, "64 lowercase hex"},
		{"upper sha", func(r *Release) { r.Files[1].SHA256 = strings.ToUpper(sum) }, "64 lowercase hex"},
		{"no files", func(r *Release) { r.Files = nil }, "0 files"},
		{"no dataset.json", func(r *Release) { r.Files[0].Path = "other.json" }, "dataset.json is not listed"},
		{"lists itself", func(r *Release) { r.Files[1].Path = FileName }, "cannot list itself"},
		{"bad version", func(r *Release) { r.Version = "../x"; r.Meta.Version = "../x" }, "version"},
		{"version mismatch", func(r *Release) { r.Meta.Version = "other" }, "metadata names version"},
		{"no meta", func(r *Release) { r.Meta = nil }, "no dataset metadata"},
		{"bad format", func(r *Release) { r.Format = 99 }, "format 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valid()
			tt.mutate(r)
			err := r.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"format":1}{}`, `{"format":"1"}`, "null"} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := valid().Marshal()
	f.Add(b)
	f.Add([]byte(`{"format":1,"version":"v","files":[{"path":"../x","size":1,"sha256":""}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// Whatever parses must be safe to install.
		for _, f := range r.Files {
			if ValidPath(f.Path) != nil || strings.Contains(f.Path, "..") || strings.HasPrefix(f.Path, "/") {
				t.Fatalf("unsafe path accepted: %q", f.Path)
			}
		}
		if _, err := r.Marshal(); err != nil {
			t.Fatalf("accepted release does not marshal: %v", err)
		}
	})
}
