package synchronizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A local account that owns a tracked folder swaps it for a symlink to a
// folder of root's secrets: drift must not follow it and show a secret in
// its diff (it read by path before, following every link on the way).
func TestDriftFollowsNoSymlink(t *testing.T) {
	rootP, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c, _ := r.Commit("snapshot", time.Now())
	s, _ := ReadSnapshot(r.Git().Storer, c.Hash)

	secrets := t.TempDir()
	os.WriteFile(filepath.Join(secrets, "fastcgi-php.txt"), []byte("root-only secret\n"), 0o600)
	snippets := filepath.Join(rootP, "etc/nginx/snippets")
	os.RemoveAll(snippets)
	if err := os.Symlink(secrets, snippets); err != nil {
		t.Fatal(err)
	}
	d, err := Drift(r.Git().Storer, s, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, it := range d {
		if strings.Contains(it.Diff, "root-only secret") {
			t.Fatalf("drift followed the symlinked folder and shows: %+v", it)
		}
		if strings.HasSuffix(it.Path, "snippets/fastcgi-php.txt") {
			seen = true
			if it.What != "missing" {
				t.Errorf("the file behind the link: %+v, want missing", it)
			}
		}
	}
	if !seen {
		t.Errorf("no drift for the file behind the link: %+v", d)
	}
}
