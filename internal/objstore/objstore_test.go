package objstore

import "testing"

func TestValidKey(t *testing.T) {
	for _, k := range []string{"a", "versions/v1/release.json", "a.b/c-d_e", "..a/b.."} {
		if err := ValidKey(k); err != nil {
			t.Errorf("ValidKey(%q) = %v", k, err)
		}
	}
	for _, k := range []string{"", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", `a\b`, "a\x00b"} {
		if err := ValidKey(k); err == nil {
			t.Errorf("ValidKey(%q) accepted", k)
		}
	}
}
