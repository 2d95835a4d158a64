package synchronizer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// fsOp is one thing done to a repository's files, as recordFS saw it.
type fsOp struct {
	kind string // "mkdir", "land" (a file reached its final name), "sync", "remove"
	name string
	from string // land by rename: the temp file's name
}

// recordFS records, in order, what go-git and Sentry do to a repository's
// files through the filesystem it is opened with: the folders made, each
// file landing at its name (created, or renamed from a temp file), each
// fsync. It sits below gitFS, so it sees what reaches the disk, not what
// the code under test says it did.
type recordFS struct {
	syncFS
	mu  sync.Mutex
	ops []fsOp
}

func (r *recordFS) add(op fsOp) {
	op.name = path.Clean(filepath.ToSlash(op.name))
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// made records the folders that dir needs and do not exist yet.
func (r *recordFS) made(dir string) {
	var missing []string
	for d := path.Clean(filepath.ToSlash(dir)); d != "." && d != "/"; d = path.Dir(d) {
		if _, err := r.syncFS.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		r.add(fsOp{kind: "mkdir", name: missing[i]})
	}
}

func (r *recordFS) Rename(from, to string) error {
	r.made(path.Dir(filepath.ToSlash(to)))
	err := r.syncFS.Rename(from, to)
	if err == nil {
		r.add(fsOp{kind: "land", name: to, from: path.Clean(filepath.ToSlash(from))})
	}
	return err
}

func (r *recordFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&os.O_CREATE != 0 {
		r.made(path.Dir(filepath.ToSlash(name)))
	}
	f, err := r.syncFS.OpenFile(name, flag, perm)
	if err == nil && flag&(os.O_WRONLY|os.O_RDWR) != 0 && !strings.Contains(name, "tmp") {
		r.add(fsOp{kind: "land", name: name})
	}
	return f, err
}

func (r *recordFS) Create(name string) (billy.File, error) {
	return r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (r *recordFS) TempFile(dir, prefix string) (billy.File, error) {
	r.made(dir)
	return r.syncFS.TempFile(dir, prefix)
}

func (r *recordFS) MkdirAll(name string, perm os.FileMode) error {
	r.made(name)
	return r.syncFS.MkdirAll(name, perm)
}

func (r *recordFS) Remove(name string) error {
	err := r.syncFS.Remove(name)
	if err == nil {
		r.add(fsOp{kind: "remove", name: name})
	}
	return err
}

func (r *recordFS) Fsync(name string) error {
	err := r.syncFS.Fsync(name)
	if err == nil {
		r.add(fsOp{kind: "sync", name: name})
	}
	return err
}

func (r *recordFS) Chmod(name string, mode os.FileMode) error {
	if c, ok := r.syncFS.(billy.Chmod); ok {
		return c.Chmod(name, mode)
	}
	return nil
}

func (r *recordFS) log() []fsOp {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fsOp(nil), r.ops...)
}

// checkObjectsDurableBeforeRefs goes through the log: when a ref lands
// (refs/...), every object file that landed before it (objects/xx/...,
// objects/pack/...) must have been synced after it landed (or as the temp
// file it was renamed from), its folder synced after it landed, and each
// folder made for it synced in its parent after it was made. A ref's own
// content must be synced before it lands. It returns how many refs were
// checked.
func checkObjectsDurableBeforeRefs(t *testing.T, ops []fsOp) int {
	t.Helper()
	type object struct {
		landed int
		from   string
	}
	objects := map[string]object{}
	mkdir := map[string]int{}
	reported := map[string]bool{}
	refs, bad := 0, 0
	syncedAfter := func(name string, after, before int) bool {
		for i := after + 1; i < before; i++ {
			if ops[i].kind == "sync" && ops[i].name == name {
				return true
			}
		}
		return false
	}
	syncedBefore := func(name string, before int) bool { return syncedAfter(name, -1, before) }
	fail := func(key, format string, args ...any) {
		if reported[key] {
			return
		}
		reported[key] = true
		if bad++; bad <= 6 {
			t.Errorf(format, args...)
		}
	}
	for i, op := range ops {
		switch {
		case op.kind == "mkdir":
			mkdir[op.name] = i
		case op.kind == "land" && objectFile(op.name):
			objects[op.name] = object{i, op.from}
		case op.kind == "remove":
			delete(objects, op.name)
		case op.kind == "land" && strings.HasPrefix(op.name, "refs/"):
			refs++
			if op.from == "" || !syncedBefore(op.from, i) {
				fail(op.name, "op %d: ref %s landed without an fsync of its content", i, op.name)
			}
			for name, o := range objects {
				content := syncedAfter(name, o.landed, i) || (o.from != "" && syncedBefore(o.from, o.landed))
				folder := syncedAfter(path.Dir(name), o.landed, i)
				if !content || !folder {
					fail(name, "op %d: ref %s landed while object %s (landed at op %d) was not durable: content synced %v, folder %s synced %v",
						i, op.name, name, o.landed, content, path.Dir(name), folder)
				}
				for d := path.Dir(name); d != "objects" && d != "."; d = path.Dir(d) {
					if at, ok := mkdir[d]; ok && !syncedAfter(path.Dir(d), at, i) {
						fail(d, "op %d: ref %s landed while folder %s (made at op %d for %s) was not synced in %s", i, op.name, d, at, name, path.Dir(d))
					}
				}
			}
		}
	}
	if bad > 6 {
		t.Errorf("... and %d more objects or folders not durable before a ref named them", bad-6)
	}
	return refs
}

// Issue 20, finding 5: every object and its folder is synced before the ref
// that names it, on the primary's commit and on the secondary's fetch.
func TestObjectsAreDurableBeforeTheRefThatNamesThem(t *testing.T) {
	root, pol := fixture(t)
	pdir := filepath.Join(t.TempDir(), "c.git")
	prec := &recordFS{syncFS: newOSSyncFS(pdir)}
	r, err := openRepo(pdir, "node-p", pol, prec)
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	if c, err := r.Commit("snapshot", time.Now()); err != nil || c == nil {
		t.Fatalf("commit: %v %v", c, err)
	}
	conf := filepath.Join(root, "etc/nginx/conf.d/new/site.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, []byte("server { listen 8080; }\n"), 0o644)
	r.Update(filepath.Dir(filepath.Dir(conf)))
	if c, err := r.Commit("edit", time.Now()); err != nil || c == nil {
		t.Fatalf("commit: %v %v", c, err)
	}
	if n := checkObjectsDurableBeforeRefs(t, prec.log()); n != 2 {
		t.Errorf("the primary's log holds %d ref writes, want 2", n)
	}

	// The secondary: a first fetch (everything), then one more commit.
	mdir := filepath.Join(t.TempDir(), "m.git")
	srec := &recordFS{syncFS: newOSSyncFS(mdir)}
	m, err := mirrorOpen(mdir, srec)
	if err != nil {
		t.Fatal(err)
	}
	sroot := t.TempDir()
	s := &Secondary{Mirror: m, Path: mdir, Policy: pol, Node: "node-s", Root: sroot,
		Reloader: reloaderFunc(func([]string) error { return nil }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	if res, err := s.Sync(ctx, packFetcher(r), false); err != nil || res.Applied != r.Head().String() {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	os.WriteFile(conf, []byte("server { listen 8081; }\n"), 0o644)
	r.Update(conf)
	r.Commit("edit", time.Now())
	if res, err := s.Sync(ctx, packFetcher(r), false); err != nil || res.Applied != r.Head().String() {
		t.Fatalf("second sync: %+v %v", res, err)
	}
	ops := srec.log()
	if n := checkObjectsDurableBeforeRefs(t, ops); n != 4 {
		t.Errorf("the secondary's log holds %d ref writes, want 4 (fetched and applied, twice)", n)
	}
	landed := 0
	for _, op := range ops {
		if op.kind == "land" && objectFile(op.name) {
			landed++
		}
	}
	if landed < 10 {
		t.Errorf("the secondary's log shows %d objects landing, want the snapshot's", landed)
	}
	t.Logf("primary: %d operations; secondary: %d operations, %d objects", len(prec.log()), len(ops), landed)
}

// A pack and its index written by go-git's pack writer (the index written
// in place, the pack renamed) are made durable before a ref too. Sentry
// writes its own packs (writePack: TestFirstSnapshotIsOneDurablePack), but
// a repository may hold go-git's or git's (git gc by hand).
func TestPackAndIndexAreDurableBeforeARef(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c.git")
	rec := &recordFS{syncFS: newOSSyncFS(dir)}
	r, err := openRepo(dir, "node-p", &Policy{}, rec)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := r.st.(storer.PackfileWriter).PackfileWriter()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write(seedPack(t)); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.fs.writeRef("refs/heads/packed", plumbing.NewHash("0123456789012345678901234567890123456789")); err != nil {
		t.Fatal(err)
	}
	ops := rec.log()
	if n := checkObjectsDurableBeforeRefs(t, ops); n != 1 {
		t.Errorf("%d refs in the log, want 1", n)
	}
	var pack, idx bool
	for _, op := range ops {
		pack = pack || op.kind == "land" && strings.HasSuffix(op.name, ".pack")
		idx = idx || op.kind == "land" && strings.HasSuffix(op.name, ".idx")
	}
	if !pack || !idx {
		t.Errorf("no pack (%v) or index (%v) in the log", pack, idx)
	}
}

// addFiles writes n small configuration files under dir, a few dozen to a
// folder, and returns their paths.
func addFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/40), fmt.Sprintf("f%04d.conf", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fileBody(dir, i)), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// fileBody is what addFiles writes in its file i under dir.
func fileBody(dir string, i int) string {
	return fmt.Sprintf("# %s\noption_%d = %d\n", filepath.Base(dir), i, i*7919)
}

// countObjects is git count-objects -v, by field.
func countObjects(t *testing.T, dir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range strings.Split(gitCmd(t, dir, "count-objects", "-v"), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			out[k], _ = strconv.Atoi(v)
		}
	}
	return out
}

// Issue 19: the first snapshot writes its blobs and trees as one pack and
// its index, not a loose object each. Both are synced (as temp files)
// before they are renamed into place, the index first, each rename synced
// in objects/pack, and all of it before the ref lands; git reads the pack
// (fsck --strict), and so do go-git, a later commit and the secondary.
func TestFirstSnapshotIsOneDurablePack(t *testing.T) {
	root, pol := fixture(t)
	many := addFiles(t, filepath.Join(root, "etc/nginx/many"), 300)
	dir := filepath.Join(t.TempDir(), "c.git")
	rec := &recordFS{syncFS: newOSSyncFS(dir)}
	r, err := openRepo(dir, "node-p", pol, rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ScanAll(); err != nil {
		t.Fatal(err)
	}
	c1, err := r.Commit("snapshot", time.Now())
	if err != nil || c1 == nil {
		t.Fatalf("commit: %v %v", c1, err)
	}
	ops := rec.log()
	if n := checkObjectsDurableBeforeRefs(t, ops); n != 1 {
		t.Errorf("%d ref writes in the log, want 1", n)
	}
	packAt, idxAt, refAt, loose := -1, -1, -1, 0
	for i, op := range ops {
		switch {
		case op.kind != "land":
		case strings.HasSuffix(op.name, ".pack"):
			if packAt >= 0 {
				t.Errorf("a second pack: %s", op.name)
			}
			packAt = i
		case strings.HasSuffix(op.name, ".idx"):
			idxAt = i
		case strings.HasPrefix(op.name, "refs/"):
			refAt = i
		case objectFile(op.name):
			loose++
		}
	}
	syncedBetween := func(name string, from, to int) bool {
		for i := from + 1; i < to; i++ {
			if ops[i].kind == "sync" && ops[i].name == name {
				return true
			}
		}
		return false
	}
	switch {
	case packAt < 0 || idxAt < 0 || refAt < 0:
		t.Fatalf("pack at op %d, index at %d, ref at %d: want all three", packAt, idxAt, refAt)
	case !(idxAt < packAt && packAt < refAt):
		t.Errorf("index landed at op %d, pack at %d, ref at %d: want the index, the pack, then the ref", idxAt, packAt, refAt)
	case !syncedBetween("objects/pack", idxAt, packAt) || !syncedBetween("objects/pack", packAt, refAt):
		t.Errorf("objects/pack not synced after the index (op %d) and after the pack (op %d) landed", idxAt, packAt)
	}
	if loose > 1 {
		t.Errorf("%d loose objects next to the pack, want the commit alone", loose)
	}
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
	idxs, _ := filepath.Glob(filepath.Join(dir, "objects/pack/pack-*.idx"))
	if len(idxs) != 1 {
		t.Fatalf("indexes: %v", idxs)
	}
	gitCmd(t, dir, "verify-pack", idxs[0]) // the index's offsets and CRCs too
	if co := countObjects(t, dir); co["packs"] != 1 || co["in-pack"] < len(many) || co["count"] != 1 || co["garbage"] != 0 {
		t.Errorf("git count-objects -v: %v, want 1 pack of every blob and tree, 1 loose object (the commit), no garbage", co)
	}
	if got, want := gitCmd(t, dir, "show", "main:files"+many[123]), fileBody(filepath.Join(root, "etc/nginx/many"), 123); got != want {
		t.Errorf("git reads %q from the pack, want %q", got, want)
	}
	s1, err := ReadSnapshot(r.Git().Storer, c1.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := readBlob(r.Git().Storer, s1.Blobs[many[7]]); err != nil || string(b) != fileBody(filepath.Join(root, "etc/nginx/many"), 7) {
		t.Errorf("go-git reads %q %v from the pack", b, err)
	}

	// A one-file commit after it: loose objects, no pack.
	os.WriteFile(many[5], []byte("option_5 = changed\n"), 0o644)
	r.Update(many[5])
	n := len(rec.log())
	c2, err := r.Commit("edit", time.Now())
	if err != nil || c2 == nil {
		t.Fatalf("commit: %v %v", c2, err)
	}
	for _, op := range rec.log()[n:] {
		if op.kind == "land" && strings.HasPrefix(op.name, "objects/pack/") {
			t.Errorf("a one-file commit wrote %s", op.name)
		}
	}
	checkObjectsDurableBeforeRefs(t, rec.log())
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")

	// A secondary fetches everything from the packed repository.
	mdir := filepath.Join(t.TempDir(), "m.git")
	sroot := t.TempDir()
	sec, err := newTestSecondary(mdir, pol, sroot)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := sec.Sync(context.Background(), packFetcher(r), false); err != nil || res.Applied != c2.Hash.String() {
		t.Fatalf("sync: %+v %v", res, err)
	}
	for _, p := range []string{many[5], many[299], filepath.Join(root, "etc/nginx/nginx.conf")} {
		want, _ := os.ReadFile(p)
		if got, err := os.ReadFile(filepath.Join(sroot, p)); err != nil || string(got) != string(want) {
			t.Errorf("%s on the secondary: %q %v, want %q", p, got, err, want)
		}
	}
	gitCmd(t, mdir, "fsck", "--strict", "--no-dangling", RefPrimary.String(), RefApplied.String())

	// Opened again, from the disk.
	r, err = OpenRepo(dir, "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(); err != nil {
		t.Error(err)
	}
	if said, err := r.Repair(time.Now()); said != "" || err != nil {
		t.Errorf("repair of a whole packed repository: %q %v", said, err)
	}
}

// The staged objects are bounded in memory: past stageMaxBytes they are
// written at once (a pack when there are enough), and the commit writes
// the rest.
func TestStagedObjectsSpillIntoPacks(t *testing.T) {
	defer func(n, m int) { stageMaxBytes, packMinObjects = n, m }(stageMaxBytes, packMinObjects)
	stageMaxBytes, packMinObjects = 2<<10, 16 // some 50 of these small files
	root, pol := fixture(t)
	many := addFiles(t, filepath.Join(root, "etc/nginx/many"), 200)
	dir := filepath.Join(t.TempDir(), "c.git")
	rec := &recordFS{syncFS: newOSSyncFS(dir)}
	r, err := openRepo(dir, "node-p", pol, rec)
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	c, err := r.Commit("snapshot", time.Now())
	if err != nil || c == nil {
		t.Fatalf("commit: %v %v", c, err)
	}
	checkObjectsDurableBeforeRefs(t, rec.log())
	gitCmd(t, dir, "fsck", "--strict", "--no-dangling")
	co := countObjects(t, dir)
	if co["packs"] < 2 || co["in-pack"]+co["count"] < len(many) {
		t.Errorf("git count-objects -v: %v, want the snapshot in several packs", co)
	}
	if got := gitCmd(t, dir, "show", "main:files"+many[110]); got != fileBody(filepath.Join(root, "etc/nginx/many"), 110) {
		t.Errorf("git reads %q", got)
	}
}

// The agent serves the secondary's fetch while the watcher commits: reads
// of the repository's storage go on while a pack is added (go test -race).
func TestPackedReadsWhileCommitting(t *testing.T) {
	defer func(n int) { packMinObjects = n }(packMinObjects)
	packMinObjects = 16
	root, pol := fixture(t)
	r, err := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	addFiles(t, filepath.Join(root, "etc/nginx/many0"), 40)
	r.ScanAll()
	if c, err := r.Commit("snapshot", time.Now()); err != nil || c == nil {
		t.Fatalf("commit: %v %v", c, err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := WritePack(io.Discard, r.Git().Storer, r.Head(), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 3; i++ {
		dir := filepath.Join(root, "etc/nginx", fmt.Sprintf("many%d", i))
		addFiles(t, dir, 40)
		r.Update(dir)
		if c, err := r.Commit("more", time.Now()); err != nil || c == nil {
			t.Errorf("commit %d: %v %v", i, c, err)
		}
	}
	close(stop)
	wg.Wait()
	if co := countObjects(t, r.Path); co["packs"] != 4 {
		t.Errorf("git count-objects -v: %v, want 4 packs", co)
	}
	gitCmd(t, r.Path, "fsck", "--strict", "--no-dangling")
}

var packName = regexp.MustCompile(`^pack-[0-9a-f]{40}\.(pack|idx)$`)
