package synchronizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/sentryha/sentry/internal/atomicfile"
)

// Durable git objects.
//
// go-git writes a loose object to a temp file and renames it into place
// with no fsync, and neither the file nor its folder is synced: after a
// power loss a ref (written by Sentry with an fsync) could name an object
// the disk never got. Each repository of Sentry's is therefore opened
// through a gitFS: it remembers every object file that lands under
// objects/ (a loose object, a pack, an index), and writeRef fsyncs those
// files, their folders, and the folders that were made for them, before
// the ref that can name them is written. The syncs are batched per ref (a
// commit's dozen objects, or a fetched pack's thousands, are synced in
// parallel), which costs far less than an fsync per object as it lands.
// A commit of many objects (the first snapshot) writes them as one pack
// instead, made durable by writePack itself (packwrite.go).

// syncFS is a filesystem that can fsync a file or a folder by its name.
// osfs cannot (its files hide Sync): osSyncFS adds it.
type syncFS interface {
	billy.Filesystem
	Fsync(name string) error
}

// osSyncFS is the real disk under a repository's folder.
type osSyncFS struct {
	billy.Filesystem
	root string
}

func newOSSyncFS(dir string) osSyncFS { return osSyncFS{osfs.New(dir), dir} }

func (f osSyncFS) Fsync(name string) error {
	fh, err := os.Open(filepath.Join(f.root, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer fh.Close()
	if err := fh.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", fh.Name(), err)
	}
	return nil
}

func (f osSyncFS) Chmod(name string, mode os.FileMode) error {
	if c, ok := f.Filesystem.(billy.Chmod); ok {
		return c.Chmod(name, mode)
	}
	return nil
}

// gitFS is what go-git writes a repository through.
type gitFS struct {
	syncFS
	mu      sync.Mutex
	pending map[string]bool // object files landed since the last flush
	newDirs map[string]bool // folders made for them since the last flush
	// cache is the object cache of the repository's storage: a repair
	// empties it, so that nothing removed as damaged is served from it.
	cache cache.Object
	// store is the repository's storage, told of each pack writePack adds.
	store *repoStorage
	// tidied counts the empty object files tidyLoose removed at open, for
	// the next repair to report.
	tidied int
}

func newGitFS(base syncFS) *gitFS {
	return &gitFS{syncFS: base, pending: map[string]bool{}, newDirs: map[string]bool{}}
}

// cleanName is a name in the repository as gitFS keeps it: slashes,
// relative to the repository's folder.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean(filepath.ToSlash(name)), "/")
}

// objectFile tells an object file (objects/ab/cdef..., objects/pack/*.pack
// and *.idx) from go-git's temp files and everything else.
func objectFile(name string) bool {
	rest, ok := strings.CutPrefix(cleanName(name), "objects/")
	if !ok || strings.Contains(path.Base(rest), "tmp_") {
		return false
	}
	dir, base := path.Split(rest)
	switch dir {
	case "pack/":
		return strings.HasSuffix(base, ".pack") || strings.HasSuffix(base, ".idx") || strings.HasSuffix(base, ".rev")
	case "info/", "":
		return false
	}
	return len(dir) == 3
}

// missingDirs lists dir and the folders above it that do not exist yet,
// deepest first.
func (g *gitFS) missingDirs(dir string) []string {
	var out []string
	for dir != "." && dir != "/" && dir != "" {
		if _, err := g.syncFS.Lstat(dir); err == nil {
			break
		}
		out = append(out, dir)
		dir = path.Dir(dir)
	}
	return out
}

func (g *gitFS) landing(name string) func(error) {
	if !objectFile(name) {
		return func(error) {}
	}
	name = cleanName(name)
	made := g.missingDirs(path.Dir(name))
	return func(err error) {
		if err != nil {
			return
		}
		g.mu.Lock()
		g.pending[name] = true
		for _, d := range made {
			g.newDirs[d] = true
		}
		g.mu.Unlock()
	}
}

func (g *gitFS) Rename(from, to string) error {
	done := g.landing(to)
	err := g.syncFS.Rename(from, to)
	done(err)
	return err
}

func (g *gitFS) Create(name string) (billy.File, error) {
	done := g.landing(name)
	f, err := g.syncFS.Create(name)
	done(err)
	return f, err
}

func (g *gitFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if flag&(os.O_CREATE|os.O_WRONLY|os.O_RDWR|os.O_TRUNC|os.O_APPEND) == 0 {
		return g.syncFS.OpenFile(name, flag, perm)
	}
	done := g.landing(name)
	f, err := g.syncFS.OpenFile(name, flag, perm)
	done(err)
	return f, err
}

func (g *gitFS) Remove(name string) error {
	err := g.syncFS.Remove(name)
	if err == nil {
		g.mu.Lock()
		delete(g.pending, cleanName(name))
		g.mu.Unlock()
	}
	return err
}

// Chmod lets go-git make loose objects read-only, as it does on a plain
// osfs.
func (g *gitFS) Chmod(name string, mode os.FileMode) error {
	if c, ok := g.syncFS.(billy.Chmod); ok {
		return c.Chmod(name, mode)
	}
	return nil
}

func (g *gitFS) Capabilities() billy.Capability { return billy.Capabilities(g.syncFS) }

// flush fsyncs every object file landed since the last flush, the
// folders holding them, and the folders above the folders made for them:
// all of them in one batch, as none needs another synced first (what
// matters is that all are before the ref is written). A failed flush
// keeps what it could not sync for the next one.
func (g *gitFS) flush() error {
	g.mu.Lock()
	files, made := g.pending, g.newDirs
	g.pending, g.newDirs = map[string]bool{}, map[string]bool{}
	g.mu.Unlock()
	if len(files) == 0 && len(made) == 0 {
		return nil
	}
	dirs := map[string]bool{}
	for f := range files {
		dirs[path.Dir(f)] = true
	}
	for d := range made {
		dirs[d] = true
		dirs[path.Dir(d)] = true
	}
	all := append(sortedKeys(files), sortedKeys(dirs)...)
	var failed []string
	if err := g.syncAll(all, &failed); err != nil {
		// What is gone (removed meanwhile) needs no sync; the rest waits
		// for the next flush.
		g.mu.Lock()
		for _, f := range failed {
			if files[f] {
				g.pending[f] = true
			} else {
				g.newDirs[f] = true
			}
		}
		g.mu.Unlock()
		return fmt.Errorf("config repository: making objects durable: %w", err)
	}
	return nil
}

// syncAll fsyncs names, a few at a time (fsyncs in parallel share the
// file system's journal commits).
func (g *gitFS) syncAll(names []string, failed *[]string) error {
	if len(names) == 0 {
		return nil
	}
	var mu sync.Mutex
	var errs []error
	work := make(chan string)
	var wg sync.WaitGroup
	for i := 0; i < min(8, len(names)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				if err := g.syncFS.Fsync(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
					mu.Lock()
					errs = append(errs, err)
					*failed = append(*failed, n)
					mu.Unlock()
				}
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	sort.Strings(*failed)
	return errors.Join(errs...)
}

// writeRef makes every object written so far durable, then points the ref
// at h: temp file, fsync, rename, fsync of the folder (and of the folders
// made for it). go-git truncates and rewrites a ref file in place, which a
// kill at the wrong moment leaves empty.
func (g *gitFS) writeRef(name plumbing.ReferenceName, h plumbing.Hash) (err error) {
	if err := g.flush(); err != nil {
		return err
	}
	p := name.String()
	dir := path.Dir(p)
	made := g.missingDirs(dir)
	if err := g.syncFS.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := g.syncFS.TempFile(dir, "."+path.Base(p)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			g.syncFS.Remove(tmp)
		}
	}()
	if _, err = f.Write([]byte(h.String() + "\n")); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err = g.syncFS.Fsync(tmp); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if c, ok := g.syncFS.(billy.Chmod); ok {
		c.Chmod(tmp, 0o644)
	}
	if err = g.syncFS.Rename(tmp, p); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	err = g.syncFS.Fsync(dir)
	for _, d := range made {
		if err == nil {
			err = g.syncFS.Fsync(path.Dir(d))
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// openGit opens the bare repository in base, or makes it (HEAD naming
// head) when there is none. The new repository's files and folders are
// synced.
func openGit(base syncFS, head plumbing.ReferenceName) (*git.Repository, *gitFS, error) {
	g := newGitFS(base)
	// What a write cut short by a crash or a power cut left.
	if err := errors.Join(g.tidyPacks(), g.tidyLoose()); err != nil {
		return nil, nil, err
	}
	g.cache = cache.NewObjectLRUDefault()
	g.store = newRepoStorage(g.storage(g.cache))
	r, err := git.Open(g.store, nil)
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		return r, g, err
	}
	_, statErr := base.Lstat(".")
	// No worktree: go-git marks the repository bare in its config.
	g.cache = cache.NewObjectLRUDefault()
	g.store = newRepoStorage(g.storage(g.cache))
	r, err = git.InitWithOptions(g.store, nil, git.InitOptions{DefaultBranch: head})
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, n := range []string{"HEAD", "config", "objects/pack", "objects/info", "objects", "refs/heads", "refs/tags", "refs", "."} {
		if _, err := base.Lstat(n); err == nil {
			names = append(names, n)
		}
	}
	for _, n := range names {
		if err := base.Fsync(n); err != nil {
			return nil, nil, err
		}
	}
	if statErr != nil {
		// The repository's folder was made: sync the folder above it.
		if b, ok := base.(osSyncFS); ok {
			if err := atomicfile.SyncDir(filepath.Dir(filepath.Clean(b.root))); err != nil {
				return nil, nil, err
			}
		}
	}
	return r, g, nil
}

// storage is a go-git storage over the same files; check uses one without
// a cache, so that it reads what the disk holds.
func (g *gitFS) storage(c cache.Object) *filesystem.Storage {
	return filesystem.NewStorage(g, c)
}

// gitFSOf returns the gitFS a storer writes through (nil if it was opened
// some other way).
func gitFSOf(st storer.Storer) *gitFS {
	if rs, ok := st.(*repoStorage); ok {
		st = rs.Storage
	}
	if fst, ok := st.(*filesystem.Storage); ok {
		if g, ok := fst.Filesystem().(*gitFS); ok {
			return g
		}
	}
	return nil
}

// writeRef points the ref at h after making the objects durable. A
// repository opened without a gitFS (by another tool) has each of its
// object files synced: slow, and correct.
func writeRef(st storer.Storer, gitDir string, name plumbing.ReferenceName, h plumbing.Hash) error {
	if g := gitFSOf(st); g != nil {
		return g.writeRef(name, h)
	}
	if err := syncTree(filepath.Join(gitDir, "objects")); err != nil {
		return err
	}
	p := filepath.Join(gitDir, filepath.FromSlash(name.String()))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, []byte(h.String()+"\n"), 0o644)
}

// syncTree fsyncs every file and folder under dir.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
