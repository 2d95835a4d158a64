package synchronizer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5"
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

// errCrash is what every write fails with once a crashFS has crashed.
var errCrash = errors.New("crashed here (test)")

// crashFS lets a number of writes through (a file made, written to,
// renamed, removed, synced or chmod-ed; a folder made), then fails every
// write after them, as if the process were killed at that point: nothing
// it would do next reaches the disk, its clean-up included. Reads go on.
type crashFS struct {
	syncFS
	mu   sync.Mutex
	left int // writes still let through; negative: no limit
}

func (c *crashFS) write() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.left < 0:
		return nil
	case c.left == 0:
		return errCrash
	}
	c.left--
	return nil
}

// crashAfter lets n more writes through; -1: all of them.
func (c *crashFS) crashAfter(n int) {
	c.mu.Lock()
	c.left = n
	c.mu.Unlock()
}

type crashFile struct {
	billy.File
	c *crashFS
}

func (f crashFile) Write(p []byte) (int, error) {
	if err := f.c.write(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (c *crashFS) file(f billy.File, err error) (billy.File, error) {
	if err != nil {
		return f, err
	}
	return crashFile{f, c}, nil
}

func (c *crashFS) Create(name string) (billy.File, error) {
	return c.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&(os.O_CREATE|os.O_WRONLY|os.O_RDWR|os.O_TRUNC|os.O_APPEND) == 0 {
		return c.syncFS.OpenFile(name, flag, perm)
	}
	if err := c.write(); err != nil {
		return nil, err
	}
	return c.file(c.syncFS.OpenFile(name, flag, perm))
}

func (c *crashFS) TempFile(dir, prefix string) (billy.File, error) {
	if err := c.write(); err != nil {
		return nil, err
	}
	return c.file(c.syncFS.TempFile(dir, prefix))
}

func (c *crashFS) Rename(from, to string) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.syncFS.Rename(from, to)
}

func (c *crashFS) Remove(name string) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.syncFS.Remove(name)
}

func (c *crashFS) MkdirAll(name string, perm os.FileMode) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.syncFS.MkdirAll(name, perm)
}

func (c *crashFS) Fsync(name string) error {
	if err := c.write(); err != nil {
		return err
	}
	return c.syncFS.Fsync(name)
}

func (c *crashFS) Chmod(name string, mode os.FileMode) error {
	if err := c.write(); err != nil {
		return err
	}
	if ch, ok := c.syncFS.(billy.Chmod); ok {
		return ch.Chmod(name, mode)
	}
	return nil
}

// losePower does to the objects what a power cut right after the crash
// would: a file renamed into objects/ whose folder was not synced since is
// back at its temp name, and a file there whose content was never synced
// (by the name it was written under) is empty.
func losePower(t *testing.T, dir string, ops []fsOp) {
	t.Helper()
	synced := map[string]bool{}
	for i, op := range ops {
		if op.kind == "sync" {
			synced[op.name] = true
		}
		if op.kind != "land" || op.from == "" || !strings.HasPrefix(op.name, "objects/") {
			continue
		}
		kept := false
		for _, later := range ops[i+1:] {
			kept = kept || later.kind == "sync" && later.name == path.Dir(op.name)
		}
		if !kept {
			if err := os.Rename(filepath.Join(dir, op.name), filepath.Join(dir, op.from)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
	}
	landedFrom := map[string]string{}
	for _, op := range ops {
		if op.kind == "land" && op.from != "" {
			landedFrom[op.name] = op.from
		}
	}
	filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if !synced[rel] && !synced[landedFrom[rel]] {
			os.Chmod(p, 0o644)
			os.Truncate(p, 0)
		}
		return nil
	})
}

// noSyncFS is the disk without its flushes: an fsync only looks the name
// up. The crash tests need the order of the writes (recordFS logs it, and
// losePower plays a power cut from it), not the disk's flushes, which
// would make them slow.
type noSyncFS struct{ osSyncFS }

func (f noSyncFS) Fsync(name string) error {
	_, err := f.Lstat(name)
	return err
}

// Issue 19: a commit that writes a pack, cut short at every one of its
// writes in turn, on a first snapshot and on a later commit of many files.
// Each crash is looked at three ways: as a kill (what was written is
// there), as a kill and a power cut (losePower), and as a failed write
// that the same Repo then retries. Whatever the point, the repository
// opened again holds no temp file and no index without its pack, needs no
// repair (its head passes Check), passes git fsck --strict, and commits
// the tree; some of the points leave a whole pack that no ref names yet.
func TestPackWriteCutShortAtEveryStep(t *testing.T) {
	// A small tree, and a threshold to match: the same writes as for
	// thousands of objects, fewer of them.
	defer func(n int) { packMinObjects = n }(packMinObjects)
	packMinObjects = 16
	for _, later := range []bool{false, true} {
		name := "first snapshot"
		if later {
			name = "later commit"
		}
		t.Run(name, func(t *testing.T) {
			root, _ := fixture(t)
			files := addFiles(t, filepath.Join(root, "etc/nginx/many"), 24)
			points, orphaned := 0, 0
			for k := 0; ; k++ {
				if k > 200 {
					t.Fatal("the commit never got through")
				}
				done, packNoRef := cutPackWriteShort(t, root, files, later, k)
				if packNoRef {
					orphaned++
				}
				if done {
					points = k
					break
				}
			}
			t.Logf("%d crash points; %d of them left a whole pack that no ref named", points, orphaned)
			if orphaned == 0 {
				t.Error("no crash point fell between the pack and the ref")
			}
		})
	}
}

// cutPackWriteShort makes the commit of the many files under root crash
// after k writes (later: a commit without them before it), and checks what
// the crash left; done says the commit got through.
func cutPackWriteShort(t *testing.T, root string, files []string, later bool, k int) (done, packNoRef bool) {
	t.Helper()
	etc := filepath.Join(root, "etc")
	pol := Policy{Roots: []string{filepath.Join(etc, "nginx"), filepath.Join(etc, "postfix"), filepath.Join(etc, "ssh/sshd_config")}}
	dir := filepath.Join(t.TempDir(), "c.git")
	rec := &recordFS{syncFS: noSyncFS{newOSSyncFS(dir)}}
	crash := &crashFS{syncFS: rec, left: -1}
	r, err := openRepo(dir, "node-p", &pol, crash)
	if err != nil {
		t.Fatal(err)
	}
	var before plumbing.Hash
	if later {
		pol.Exclude = []string{"many"}
		r.ScanAll()
		c, err := r.Commit("snapshot", time.Now())
		if err != nil || c == nil {
			t.Fatalf("commit: %v %v", c, err)
		}
		before = c.Hash
		pol.Exclude = nil
	}
	r.ScanAll()
	packsBefore, _ := filepath.Glob(filepath.Join(dir, "objects/pack/pack-*.pack"))
	crash.crashAfter(k)
	_, err = r.Commit("many", time.Now())
	if err == nil {
		return true, false
	}
	if !errors.Is(err, errCrash) {
		t.Fatalf("crash after %d writes: %v", k, err)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "objects/pack/pack-*.pack"))
	packNoRef = len(packs) > len(packsBefore) && r.Head() == before

	killed, cut := filepath.Join(t.TempDir(), "killed.git"), filepath.Join(t.TempDir(), "cut.git")
	for _, d := range []string{killed, cut} {
		if out, err := exec.Command("cp", "-a", dir, d).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	losePower(t, cut, rec.log())
	crash.crashAfter(-1)
	if _, err := r.Commit("many", time.Now()); err != nil {
		t.Fatalf("crash after %d writes: the retry: %v", k, err)
	}
	for _, c := range []struct{ how, dir string }{{"a kill", killed}, {"a kill and a power cut", cut}, {"a failed write and a retry", dir}} {
		afterCrash(t, fmt.Sprintf("%s after %d writes", c.how, k), c.dir, &pol, files)
	}
	return false, packNoRef
}

// afterCrash opens the repository at dir again and checks it.
func afterCrash(t *testing.T, what, dir string, pol *Policy, files []string) {
	t.Helper()
	r, err := openRepo(dir, "node-p", pol, noSyncFS{newOSSyncFS(dir)})
	if err != nil {
		t.Fatalf("%s: open: %v", what, err)
	}
	names, _ := os.ReadDir(filepath.Join(dir, "objects/pack"))
	have := map[string]bool{}
	for _, e := range names {
		have[e.Name()] = true
	}
	for n := range have {
		base, _ := strings.CutSuffix(n, ".idx")
		switch {
		case !packName.MatchString(n):
			t.Errorf("%s: %s left in objects/pack", what, n)
		case strings.HasSuffix(n, ".idx") && !have[base+".pack"]:
			t.Errorf("%s: %s left without its pack", what, n)
		case strings.HasSuffix(n, ".pack") && !have[strings.TrimSuffix(n, ".pack")+".idx"]:
			t.Errorf("%s: %s without its index", what, n)
		}
	}
	if said, err := r.Repair(time.Now()); said != "" || err != nil {
		t.Errorf("%s: repair: %q %v", what, said, err)
	}
	if err := r.ScanAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Commit("after the crash", time.Now()); err != nil {
		t.Fatalf("%s: the next commit: %v", what, err)
	}
	// What the crash left is still there, next to the new commit.
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
	last := len(files) - 1
	s, err := ReadSnapshot(r.Git().Storer, r.Head())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readBlob(r.Git().Storer, s.Blobs[files[last]]); err != nil || string(got) != fileBody(filepath.Dir(filepath.Dir(files[last])), last) {
		t.Errorf("%s: the next commit holds %q (%v) for %s", what, got, err, files[last])
	}
}

// What a write cut short leaves (the temp files of a pack, an index whose
// pack never got its name, go-git's temp files of loose objects, an empty
// loose object) is removed when the repository is opened; whole packs are
// kept, and a commit that makes the object that was empty writes it again.
func TestOpenRemovesWhatAWriteCutShortLeft(t *testing.T) {
	root, pol := fixture(t)
	addFiles(t, filepath.Join(root, "etc/nginx/many"), 300)
	dir := filepath.Join(t.TempDir(), "c.git")
	r, err := OpenRepo(dir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	if c, err := r.Commit("snapshot", time.Now()); err != nil || c == nil {
		t.Fatalf("commit: %v %v", c, err)
	}
	pd := filepath.Join(dir, "objects/pack")
	idx, _ := filepath.Glob(filepath.Join(pd, "pack-*.idx"))
	if len(idx) != 1 {
		t.Fatalf("packs: %v", idx)
	}
	b, _ := os.ReadFile(idx[0])
	left := []string{tmpPackPrefix + "123", tmpIdxPrefix + "456", "pack-0123456789012345678901234567890123456789.idx", "tmp_obj_789"}
	for _, n := range left {
		os.WriteFile(filepath.Join(pd, n), b[:len(b)/2], 0o444)
	}
	// The object of a file not yet written, as a power cut leaves it.
	conf := filepath.Join(root, "etc/nginx/nginx.conf")
	body := []byte("worker_processes 3;\n")
	empty := objectPath(dir, plumbing.ComputeHash(plumbing.BlobObject, body))
	os.MkdirAll(filepath.Dir(empty), 0o755)
	os.WriteFile(empty, nil, 0o444)
	// Not Sentry's: kept.
	os.WriteFile(filepath.Join(pd, "tmp_pack_git"), nil, 0o444)
	r, err = OpenRepo(dir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range append(left, empty) {
		if !filepath.IsAbs(n) {
			n = filepath.Join(pd, n)
		}
		if _, err := os.Stat(n); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the open (%v)", n, err)
		}
	}
	for _, n := range []string{filepath.Base(idx[0]), strings.TrimSuffix(filepath.Base(idx[0]), ".idx") + ".pack", "tmp_pack_git"} {
		if _, err := os.Stat(filepath.Join(pd, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
	os.WriteFile(conf, body, 0o644)
	r.Update(conf)
	if c, err := r.Commit("edit", time.Now()); err != nil || c == nil {
		t.Fatalf("commit: %v %v", c, err)
	}
	if err := r.Check(); err != nil {
		t.Error(err)
	}
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
}
