package synchronizer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sys/unix"
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

// DriftCached finds what Drift finds, and remembers the files in step by
// their stat: an edit that keeps the size and puts the modification time
// back is still found (the change time moved), as are a mode change and a
// file put in another's place.
func TestDriftCached(t *testing.T) {
	rootP, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	c, _ := r.Commit("snapshot", time.Now())
	s, _ := ReadSnapshot(r.Git().Storer, c.Hash)
	var cache DriftCache
	files := 0
	for _, e := range s.Entries {
		if e.Type == TypeFile {
			files++
		}
	}
	for i := 0; i < 2; i++ {
		if d, err := DriftCached(r.Git().Storer, s, "", nil, &cache); err != nil || len(d) != 0 {
			t.Fatalf("pass %d on an unchanged tree: %v %v", i, d, err)
		}
	}
	if len(cache.clean) != files || files == 0 {
		t.Fatalf("%d of %d files remembered in step", len(cache.clean), files)
	}
	conf := filepath.Join(rootP, "etc/nginx/nginx.conf")
	fi, _ := os.Stat(conf)
	old, _ := os.ReadFile(conf)
	edited := []byte(strings.Replace(string(old), "a", "b", 1))
	if string(edited) == string(old) || len(edited) != len(old) {
		t.Fatal("the fixture's nginx.conf has no a to change")
	}
	os.WriteFile(conf, edited, 0o644)
	os.Chtimes(conf, fi.ModTime(), fi.ModTime()) // size and mtime as before
	main := filepath.Join(rootP, "etc/postfix/main.cf")
	os.Chmod(main, 0o600)
	d, err := DriftCached(r.Git().Storer, s, "", nil, &cache)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range d {
		got[filepath.Base(it.Path)] = it.What
	}
	if got["nginx.conf"] != "content" || got["main.cf"] != "mode" || len(d) != 2 {
		t.Fatalf("drift with the cache: %+v", d)
	}
	if _, ok := cache.clean[conf]; ok {
		t.Error("a drifted file is still remembered in step")
	}
	// Put back (a new file of the same content in its place): in step,
	// and remembered again.
	os.Remove(conf)
	os.WriteFile(conf, old, 0o644)
	os.Chtimes(conf, fi.ModTime(), fi.ModTime())
	os.Chmod(main, 0o644)
	if d, err := DriftCached(r.Git().Storer, s, "", nil, &cache); err != nil || len(d) != 0 {
		t.Fatalf("after putting back: %v %v", d, err)
	}
	if len(cache.clean) != files {
		t.Errorf("%d of %d files remembered after putting back", len(cache.clean), files)
	}
	// Another commit's snapshot starts afresh.
	cache.forCommit(plumbing.NewHash("1111111111111111111111111111111111111111"))
	if len(cache.clean) != 0 {
		t.Error("the cache kept another commit's files")
	}
}

// The drift check's walker keeps the folders of the last path open and
// opens only what the next path adds: each fd it gives is the folder
// asked for, a folder that is a symlink is refused, and close leaves
// nothing open.
func TestDirWalker(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b/c", "a/x", "z"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "l")); err != nil {
		t.Fatal(err)
	}
	base, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(base)
	w := &dirWalker{base: base}
	for _, step := range []struct {
		dir   string
		opens int // folders opened for it
	}{{"/a/b", 2}, {"/a/b/c", 1}, {"/a/b/c", 0}, {"/a/x", 1}, {"/", 0}, {"/z", 1}, {"/a/b/c", 3}} {
		before := len(w.fds)
		kept := 0
		for kept < len(w.names) && kept < len(splitAbs(step.dir)) && w.names[kept] == splitAbs(step.dir)[kept] {
			kept++
		}
		fd, err := w.open(step.dir)
		if err != nil {
			t.Fatalf("%s: %v", step.dir, err)
		}
		if got := len(w.fds) - kept; got != step.opens {
			t.Errorf("%s: opened %d folders (had %d open), want %d", step.dir, got, before, step.opens)
		}
		var got, want unix.Stat_t
		if err := unix.Fstat(fd, &got); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(filepath.Join(root, step.dir), &want); err != nil {
			t.Fatal(err)
		}
		if got.Ino != want.Ino {
			t.Errorf("%s: the fd is another folder (inode %d, want %d)", step.dir, got.Ino, want.Ino)
		}
		if len(w.fds) != len(splitAbs(step.dir)) {
			t.Errorf("%s: %d folders open, want its depth %d", step.dir, len(w.fds), len(splitAbs(step.dir)))
		}
	}
	var we *walkError
	if _, err := w.open("/l/b"); !errors.As(err, &we) || we.Path != "/l" {
		t.Errorf("a folder that is a symlink: %v, want a walkError at /l", err)
	}
	w.close()
	if len(w.fds) != 0 {
		t.Errorf("after close: %d folders open", len(w.fds))
	}
}
