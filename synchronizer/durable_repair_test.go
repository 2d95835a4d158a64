package synchronizer

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// objectPath is where a loose object lives in the repository at dir.
func objectPath(dir string, h plumbing.Hash) string {
	return filepath.Join(dir, "objects", h.String()[:2], h.String()[2:])
}

// lose does to a repository what a power loss does to the objects written
// since the last writeback: the commit object is gone, a blob is there
// with no content (a renamed file whose data never reached the disk).
func lose(t *testing.T, dir string, commit, blob plumbing.Hash) {
	t.Helper()
	if err := os.Remove(objectPath(dir, commit)); err != nil {
		t.Fatal(err)
	}
	if blob.IsZero() {
		return
	}
	p := objectPath(dir, blob)
	os.Chmod(p, 0o644)
	if err := os.Truncate(p, 0); err != nil {
		t.Fatal(err)
	}
}

func blobOf(t *testing.T, r *Repo, file string) plumbing.Hash {
	t.Helper()
	s, err := ReadSnapshot(r.Git().Storer, r.Head())
	if err != nil {
		t.Fatal(err)
	}
	return s.Blobs[file]
}

func newTestSecondary(mdir string, pol *Policy, root string) (*Secondary, error) {
	m, err := MirrorOpen(mdir)
	if err != nil {
		return nil, err
	}
	return &Secondary{Mirror: m, Path: mdir, Policy: pol, Node: "node-s", Root: root,
		Reloader: reloaderFunc(func([]string) error { return nil }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil
}

// Issue 20, finding 5: both nodes lose the objects of the newest commit
// (a power cut on the rack). Before, the primary could never commit again
// (its head's commit object was gone) and the secondary failed every sync,
// --force included. At start each repairs itself and says so: the primary
// recommits from the disk on the last intact commit, the secondary drops
// what it fetched, fetches everything again, and applies the new head.
func TestPowerLossOnBothNodesIsRepairedAtStart(t *testing.T) {
	root, pol := fixture(t)
	pdir := filepath.Join(t.TempDir(), "c.git")
	r, err := OpenRepo(pdir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	c1, _ := r.Commit("snapshot", time.Now())
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	os.WriteFile(conf, []byte("worker_processes 7;\n"), 0o644)
	r.Update(conf)
	c2, err := r.Commit("edit", time.Now())
	if err != nil || c2 == nil {
		t.Fatalf("commit: %v %v", c2, err)
	}
	blob := blobOf(t, r, conf)

	mdir := filepath.Join(t.TempDir(), "m.git")
	sroot := t.TempDir()
	s, err := newTestSecondary(mdir, pol, sroot)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if res, err := s.Sync(ctx, packFetcher(r), false); err != nil || res.Applied != c2.Hash.String() {
		t.Fatalf("sync: %+v %v", res, err)
	}

	// The power cut: the newest commit's objects are lost on both nodes.
	lose(t, pdir, c2.Hash, blob)
	lose(t, mdir, c2.Hash, blob)

	// The primary's agent starts again.
	r, err = OpenRepo(pdir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err == nil || !strings.Contains(err.Error(), c2.Hash.String()) {
		t.Errorf("Check of the damaged primary: %v, want it to name the lost commit %s", err, c2.Hash)
	}
	said, err := r.Repair(time.Now())
	if err != nil {
		t.Fatalf("primary's repair: %v", err)
	}
	t.Logf("primary: %s", said)
	if !strings.Contains(said, "recommitted") || !strings.Contains(said, short(c1.Hash)) {
		t.Errorf("the primary's repair says %q, want it to say it recommitted on %s", said, short(c1.Hash))
	}
	r.ScanAll()
	os.WriteFile(conf, []byte("worker_processes 8;\n"), 0o644)
	r.Update(conf)
	c3, err := r.Commit("edit after the power cut", time.Now())
	if err != nil || c3 == nil {
		t.Fatalf("the primary cannot commit after Repair: %v %v", c3, err)
	}
	if err := r.Check(); err != nil {
		t.Errorf("Check after the repair: %v", err)
	}
	gitCmd(t, pdir, "fsck", "--strict", "--no-dangling")
	log := gitCmd(t, pdir, "log", "--format=%H %s", "main")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "repaired:") || !strings.HasPrefix(lines[2], c1.Hash.String()) {
		t.Errorf("history after the repair:\n%s\nwant the new commit, the repair, and %s", log, c1.Hash)
	}
	if again, err := r.Repair(time.Now()); again != "" || err != nil {
		t.Errorf("a second repair: %q %v, want nothing to do", again, err)
	}

	// The secondary's agent starts again.
	s, err = newTestSecondary(mdir, pol, sroot)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil {
		t.Error("Check of the damaged mirror found nothing")
	}
	said, err = s.Repair()
	if err != nil {
		t.Fatalf("secondary's repair: %v", err)
	}
	t.Logf("secondary: %s", said)
	if !strings.Contains(said, "fetches everything") {
		t.Errorf("the secondary's repair says %q", said)
	}
	res, err := s.Sync(ctx, packFetcher(r), false)
	if err != nil || res.Applied != c3.Hash.String() {
		t.Fatalf("the secondary cannot sync after Repair: %+v %v", res, err)
	}
	if !strings.Contains(res.Repaired, "applied in full") {
		t.Errorf("the sync that applied over a lost commit says %q", res.Repaired)
	}
	if b, _ := os.ReadFile(filepath.Join(sroot, conf)); string(b) != "worker_processes 8;\n" {
		t.Errorf("nginx.conf on the secondary: %q", b)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check of the mirror after the sync: %v", err)
	}
	gitCmd(t, mdir, "fsck", "--strict", "--no-dangling", RefPrimary.String(), RefApplied.String())
}

// Only the secondary lost objects (the primary is whole). The agent did
// not call Repair: the first sync of the restarted agent checks the mirror
// and says so; the fetch brings the objects back, the applied commit's
// included, and a sync --force works too.
func TestSecondaryRepairsLostObjects(t *testing.T) {
	root, pol := fixture(t)
	r, _ := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	r.ScanAll()
	r.Commit("snapshot", time.Now())
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	os.WriteFile(conf, []byte("worker_processes 7;\n"), 0o644)
	r.Update(conf)
	c2, _ := r.Commit("edit", time.Now())
	mdir := filepath.Join(t.TempDir(), "m.git")
	sroot := t.TempDir()
	s, _ := newTestSecondary(mdir, pol, sroot)
	ctx := context.Background()
	if res, err := s.Sync(ctx, packFetcher(r), false); err != nil || res.Applied != c2.Hash.String() {
		t.Fatalf("sync: %+v %v", res, err)
	}
	c, _ := object.GetCommit(r.Git().Storer, c2.Hash)
	lose(t, mdir, c2.Hash, blobOf(t, r, conf))
	os.Truncate(objectPath(mdir, c.TreeHash), 3) // and a tree, cut short

	s, _ = newTestSecondary(mdir, pol, sroot)
	for i, force := range []bool{false, true} {
		res, err := s.Sync(ctx, packFetcher(r), force)
		if err != nil || res.Applied != c2.Hash.String() || res.Error != "" {
			t.Fatalf("sync (force %v) after the restart: %+v %v", force, res, err)
		}
		if i == 0 {
			t.Logf("secondary: %s", res.Repaired)
			if !strings.Contains(res.Repaired, "fetches everything") || !strings.Contains(res.Repaired, "2 damaged object file(s) removed") {
				t.Errorf("the first sync after the restart says %q", res.Repaired)
			}
		} else if res.Repaired != "" {
			t.Errorf("the second sync says %q", res.Repaired)
		}
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check after the sync: %v", err)
	}
	gitCmd(t, mdir, "fsck", "--strict", "--no-dangling", RefPrimary.String(), RefApplied.String())
}

// Without a restart: a commit that finds its head damaged repairs it, and
// a sync that cannot read what it fetched drops it, so that the next one
// fetches everything.
func TestDamageFoundWhileRunningIsRepaired(t *testing.T) {
	root, pol := fixture(t)
	pdir := filepath.Join(t.TempDir(), "c.git")
	r, _ := OpenRepo(pdir, "node-p", pol)
	r.ScanAll()
	r.Commit("snapshot", time.Now())
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	os.WriteFile(conf, []byte("worker_processes 7;\n"), 0o644)
	r.Update(conf)
	c2, _ := r.Commit("edit", time.Now())

	mdir := filepath.Join(t.TempDir(), "m.git")
	s, _ := newTestSecondary(mdir, pol, t.TempDir())
	ctx := context.Background()
	if _, err := s.Sync(ctx, packFetcher(r), false); err != nil {
		t.Fatal(err)
	}
	os.Remove(objectPath(mdir, c2.Hash))
	_, err := s.Sync(ctx, packFetcher(r), true)
	if err == nil || !strings.Contains(err.Error(), "fetches everything") {
		t.Fatalf("a sync whose head is gone: %v", err)
	}
	if res, err := s.Sync(ctx, packFetcher(r), true); err != nil || res.Applied != c2.Hash.String() {
		t.Fatalf("the next sync: %+v %v", res, err)
	}

	var repaired []string
	p := &Primary{Repo: r, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnCommit: func(c *CommitResult) { repaired = append(repaired, c.Repaired) }}
	os.Remove(objectPath(pdir, c2.Hash))
	os.WriteFile(conf, []byte("worker_processes 9;\n"), 0o644)
	r.Update(conf)
	p.commit("change seen by the watcher")
	if len(repaired) != 1 || !strings.Contains(repaired[0], "recommitted") {
		t.Fatalf("commit on a damaged head: %q", repaired)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if b := gitCmd(t, pdir, "show", "main:files"+conf); b != "worker_processes 9;\n" {
		t.Errorf("the repaired head holds %q", b)
	}
}

// The primary's agent did not call Repair: Primary.Run repairs at start and
// gives the repair's commit to OnCommit, saying what it did.
func TestPrimaryRunRepairsAtStart(t *testing.T) {
	root, pol := fixture(t)
	pdir := filepath.Join(t.TempDir(), "c.git")
	r, _ := OpenRepo(pdir, "node-p", pol)
	r.ScanAll()
	r.Commit("snapshot", time.Now())
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	os.WriteFile(conf, []byte("worker_processes 7;\n"), 0o644)
	r.Update(conf)
	c2, _ := r.Commit("edit", time.Now())
	lose(t, pdir, c2.Hash, blobOf(t, r, conf))

	r, _ = OpenRepo(pdir, "node-p", pol)
	commits := make(chan *CommitResult, 4)
	p := &Primary{Repo: r, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Debounce: time.Hour, Rescan: time.Hour,
		OnCommit: func(c *CommitResult) { commits <- c }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case c := <-commits:
		if !strings.Contains(c.Repaired, "recommitted") || c.Hash != r.Head() {
			t.Errorf("the first commit of Run: %+v, want the repair's", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no commit from Run")
	}
	if err := r.Check(); err != nil {
		t.Error(err)
	}
}
