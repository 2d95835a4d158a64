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

// The primary refuses what the secondary would refuse (a world-writable
// file, a login account's file, a name with a terminal escape), so that it
// is listed in refused.toml instead of failing every apply there.
func TestPrimaryRefusesWhatTheSecondaryWould(t *testing.T) {
	rootP, pol := fixture(t)
	n := filepath.Join(rootP, "etc/nginx")
	os.WriteFile(filepath.Join(n, "ww.conf"), []byte("x\n"), 0o644)
	os.Chmod(filepath.Join(n, "ww.conf"), 0o666)
	os.WriteFile(filepath.Join(n, "user.conf"), []byte("x\n"), 0o644)
	os.Chown(filepath.Join(n, "user.conf"), 1000, 1000)
	os.WriteFile(filepath.Join(n, "esc\x1b[31m.conf"), []byte("x\n"), 0o644)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c, err := r.Commit("snapshot", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rf := range c.Refused {
		got[filepath.Base(rf.Path)] = rf.Reason
	}
	for name, want := range map[string]string{"ww.conf": "world-writable", "user.conf": "login account", "esc\x1b[31m.conf": "control characters"} {
		if !strings.Contains(got[name], want) {
			t.Errorf("%q: refusal %q, want %q", name, got[name], want)
		}
	}
}
