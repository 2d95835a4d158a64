package synchronizer

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// The pack a secondary gets after missing 50 commits is about the size of
// the pack git itself makes for the same history, and it holds everything.
func TestPackAgainstGit(t *testing.T) {
	root, pol := fixture(t)
	for i := 0; i < 200; i++ {
		f := filepath.Join(root, "etc/nginx/conf.d", fmt.Sprintf("site%03d.conf", i))
		os.WriteFile(f, []byte(strings.Repeat(fmt.Sprintf("server_name s%d.example; # padding line\n", i), 20)), 0o644)
	}
	dir := filepath.Join(t.TempDir(), "c.git")
	r, _ := OpenRepo(dir, "node-p", pol)
	r.ScanAll()
	base, _ := r.Commit("base", time.Now())
	off := filepath.Join(root, "etc/nginx/conf.d/offline.conf")
	for i := 0; i < 50; i++ {
		fh, _ := os.OpenFile(off, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		fmt.Fprintf(fh, "# edit %d\n", i)
		fh.Close()
		r.Update(off)
		if _, err := r.Commit("edit", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	head := r.Head()
	var buf bytes.Buffer
	n, err := WritePack(&buf, r.Git().Storer, head, []plumbing.Hash{base.Hash})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", fmt.Sprintf("git --git-dir %s rev-list --objects %s ^%s | git --git-dir %s pack-objects --stdout --delta-base-offset | wc -c",
		dir, head, base.Hash, dir)).Output()
	if err != nil {
		t.Fatal(err)
	}
	var gitBytes int
	fmt.Sscan(strings.TrimSpace(string(out)), &gitBytes)
	ratio := float64(buf.Len()) / float64(gitBytes)
	t.Logf("50 commits: %d objects, sentry pack %d bytes, git pack %d bytes: %.2fx", n, buf.Len(), gitBytes, ratio)
	if ratio > 1.2 {
		t.Errorf("pack is %.2fx git's", ratio)
	}
	// The pack, read into a mirror that has the base, gives the head.
	m, _ := MirrorOpen(filepath.Join(t.TempDir(), "m.git"))
	var full bytes.Buffer
	WritePack(&full, r.Git().Storer, base.Hash, nil)
	if err := ReadPack(m.Storer, &full); err != nil {
		t.Fatal(err)
	}
	if err := ReadPack(m.Storer, &buf); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(m.Storer, head)
	if err != nil || len(s.Blobs) < 200 {
		t.Fatalf("snapshot from the mirror: %v, %d blobs", err, len(s.Blobs))
	}
}
