package synchronizer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/sergi/go-diff/diffmatchpatch"
	"golang.org/x/sys/unix"
)

// DriftItem is a tracked path whose disk state differs from the commit
// applied last: a local edit on the secondary.
type DriftItem struct {
	Path string `json:"path"`
	What string `json:"what"`           // content, mode, owner, missing, type, target
	Diff string `json:"diff,omitempty"` // for content: lines as committed (-) and as on disk (+)
}

// maxDriftRead bounds what Drift reads of one file: the apply refuses
// blobs larger than this, so a larger file is drift by its size alone.
const maxDriftRead = 16 << 20

// driftFile is what Drift reads of one path on disk, through descriptors:
// each folder on the way opened without following a symlink, the path
// itself not followed either. A local account that owns a tracked folder
// cannot make it read (and show in a diff) a file elsewhere.
type driftFile struct {
	st      unix.Stat_t
	target  string // a symlink's
	content []byte // a regular file's (nil past maxDriftRead)
	big     bool
	xattrs  string
	// unchanged: the file's stat is the one it had when a check found it
	// in step (DriftCache); nothing else was read.
	unchanged bool
}

// DriftCache remembers, for the files a drift check found in step with the
// snapshot of one commit, the stat they had: device, inode, size, and the
// modification and change times to the nanosecond. A later check takes a
// file with the very same stat as still in step, without reading and
// hashing it: any write to it, or change of its mode, owner or extended
// attributes, moves its change time (which no program can set back), and
// a file put in its place has another inode. The secondary checks every
// 15 s; without it, each check read and hashed every tracked file (7 % of
// its agent's CPU in the lab). The zero value is ready; it is safe for
// concurrent use.
type DriftCache struct {
	mu     sync.Mutex
	commit plumbing.Hash
	clean  map[string]statKey
}

type statKey struct {
	dev, ino, size, mtime, mtimeNs, ctime, ctimeNs int64
}

func keyOf(st *unix.Stat_t) statKey {
	return statKey{int64(st.Dev), int64(st.Ino), st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec}
}

// forCommit is the cache's map for snapshot commit c, emptied when it is
// another commit's.
func (c *DriftCache) forCommit(h plumbing.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clean == nil || c.commit != h {
		c.commit, c.clean = h, map[string]statKey{}
	}
}

func (c *DriftCache) unchanged(p string, st *unix.Stat_t) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.clean[p]
	return ok && k == keyOf(st)
}

func (c *DriftCache) set(p string, st *unix.Stat_t, inStep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if inStep {
		c.clean[p] = keyOf(st)
	} else {
		delete(c.clean, p)
	}
}

// dirWalker opens the folders of the paths a drift check reads, from base
// and never through a symlink (as walk does), and keeps the folders of the
// last path open: the check reads its paths in sorted order, so the next
// path's folders are mostly the same ones, and each is opened once rather
// than once per file below it.
type dirWalker struct {
	base  int
	names []string // the folders open, from the root
	fds   []int    // fds[i]: the folder names[:i+1]
}

// open is the folder dir, open; it stays the walker's (close closes it).
func (w *dirWalker) open(dir string) (int, error) {
	names := splitAbs(dir)
	k := 0
	for k < len(names) && k < len(w.names) && names[k] == w.names[k] {
		k++
	}
	w.drop(k)
	for i := k; i < len(names); i++ {
		n := names[i]
		at := "/" + strings.Join(names[:i+1], "/")
		if n == "" || n == "." || n == ".." || strings.Contains(n, "/") {
			return -1, &walkError{at, unix.EINVAL}
		}
		parent := w.base
		if i > 0 {
			parent = w.fds[i-1]
		}
		fd, err := openat(parent, n, dirFlags, 0)
		if err != nil {
			return -1, &walkError{at, err}
		}
		w.names, w.fds = append(w.names, n), append(w.fds, fd)
	}
	if len(w.fds) == 0 {
		return w.base, nil
	}
	return w.fds[len(w.fds)-1], nil
}

// drop closes the folders open below the first k.
func (w *dirWalker) drop(k int) {
	for _, fd := range w.fds[k:] {
		unix.Close(fd)
	}
	w.names, w.fds = w.names[:k], w.fds[:k]
}

func (w *dirWalker) close() { w.drop(0) }

// readDriftFileUnless reads p for the drift check, its folder opened by w;
// it stops after the stat of a regular file for which unchanged says so
// (f.unchanged set, nothing else read).
func readDriftFileUnless(w *dirWalker, p string, wantContent bool, unchanged func(*unix.Stat_t) bool) (*driftFile, error) {
	dir, err := w.open(filepath.Dir(p))
	if err != nil {
		return nil, err
	}
	name := filepath.Base(p)
	f := &driftFile{}
	if f.st, err = fstatat(dir, name); err != nil {
		return nil, err
	}
	if unchanged != nil && f.st.Mode&unix.S_IFMT == unix.S_IFREG && unchanged(&f.st) {
		f.unchanged = true
		return f, nil
	}
	switch f.st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		f.target, err = readlinkAt(dir, name)
		return f, err
	case unix.S_IFREG, unix.S_IFDIR:
	default:
		return f, nil
	}
	fl := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	if f.st.Mode&unix.S_IFMT == unix.S_IFDIR {
		fl |= unix.O_DIRECTORY
	}
	fd, err := openat(dir, name, fl, 0)
	if err != nil {
		return nil, err
	}
	fh := os.NewFile(uintptr(fd), p)
	defer fh.Close()
	f.xattrs = readXattrsFd(fd)
	if f.st.Mode&unix.S_IFMT == unix.S_IFREG && wantContent {
		if f.st.Size > maxDriftRead {
			f.big = true
			return f, nil
		}
		f.content, err = io.ReadAll(io.LimitReader(fh, maxDriftRead+1))
		if err != nil {
			return nil, err
		}
		if len(f.content) > maxDriftRead {
			f.content, f.big = nil, true
		}
	}
	return f, nil
}

// Drift compares the disk with snapshot s (the commit applied last).
func Drift(st storer.EncodedObjectStorer, s *Snapshot, root string, secrets *Secrets) ([]DriftItem, error) {
	return DriftCached(st, s, root, secrets, nil)
}

// DriftCached is Drift with a cache of the files found in step before
// (nil: none); see DriftCache.
func DriftCached(st storer.EncodedObjectStorer, s *Snapshot, root string, secrets *Secrets, cache *DriftCache) ([]DriftItem, error) {
	if root == "" {
		root = "/"
	}
	base, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("drift: %s: %w", root, err)
	}
	defer unix.Close(base)
	w := &dirWalker{base: base}
	defer w.close()
	var out []DriftItem
	type readFile struct {
		p  string
		st unix.Stat_t
	}
	var read []readFile // regular files read: in step unless out names them
	done := false
	if cache != nil {
		cache.forCommit(s.Commit)
		defer func() {
			if !done {
				return // an error: what was read is not known in step
			}
			drifted := map[string]bool{}
			for _, d := range out {
				drifted[d.Path] = true
			}
			for _, r := range read {
				cache.set(r.p, &r.st, !drifted[r.p])
			}
		}()
	}
	for _, p := range sortedKeys(s.Entries) {
		e := s.Entries[p]
		var unchanged func(*unix.Stat_t) bool
		if cache != nil && e.Type == TypeFile {
			unchanged = func(st *unix.Stat_t) bool { return cache.unchanged(p, st) }
		}
		f, err := readDriftFileUnless(w, p, e.Type == TypeFile, unchanged)
		if err == nil && f.unchanged {
			continue
		}
		if err == nil && cache != nil && e.Type == TypeFile {
			read = append(read, readFile{p, f.st})
		}
		if err != nil {
			var we *walkError
			if errors.Is(err, unix.ENOENT) || errors.As(err, &we) {
				// Missing, or a folder on the way is not a real one here.
				out = append(out, DriftItem{Path: p, What: "missing"})
				continue
			}
			return nil, fmt.Errorf("drift: %s: %w", p, err)
		}
		typ := f.st.Mode & unix.S_IFMT
		switch e.Type {
		case TypeDir:
			if typ != unix.S_IFDIR {
				out = append(out, DriftItem{Path: p, What: "type"})
				continue
			}
		case TypeSymlink:
			if typ != unix.S_IFLNK || f.target != e.Target {
				out = append(out, DriftItem{Path: p, What: "target", Diff: fmt.Sprintf("-%s\n+%s\n", printable(e.Target), printable(f.target))})
			}
			continue
		case TypeFile:
			if typ != unix.S_IFREG {
				out = append(out, DriftItem{Path: p, What: "type"})
				continue
			}
			if f.big {
				out = append(out, DriftItem{Path: p, What: "content", Diff: fmt.Sprintf("(%d bytes on disk: larger than any file the sync writes)\n", f.st.Size)})
				continue
			}
			disk := f.content
			if e.Encrypted {
				// A secret: compare, never show.
				if secrets == nil || secrets.MAC(disk) != e.MAC {
					out = append(out, DriftItem{Path: p, What: "content", Diff: "(a secret: its content is not shown)\n"})
					continue
				}
			} else if h := s.Blobs[p]; plumbing.ComputeHash(plumbing.BlobObject, disk) != h {
				want, err := readBlob(st, h)
				if err != nil {
					return nil, err
				}
				out = append(out, DriftItem{Path: p, What: "content", Diff: LineDiff(string(want), string(disk))})
				continue
			}
		}
		if f.xattrs != e.Xattrs {
			out = append(out, DriftItem{Path: p, What: "xattrs", Diff: "-" + e.Xattrs + "\n+" + f.xattrs + "\n"})
			continue
		}
		if m, _ := strconv.ParseUint(e.Mode, 8, 32); uint64(f.st.Mode&0o777) != m {
			out = append(out, DriftItem{Path: p, What: "mode", Diff: fmt.Sprintf("-%s\n+%04o\n", e.Mode, f.st.Mode&0o777)})
			continue
		}
		if uid, gid, err := ids(e); err == nil && [2]int{int(f.st.Uid), int(f.st.Gid)} != [2]int{uid, gid} {
			out = append(out, DriftItem{Path: p, What: "owner", Diff: fmt.Sprintf("-%s:%s\n+%s:%s\n", e.Owner, e.Group, userName(f.st.Uid), groupName(f.st.Gid))})
		}
	}
	done = true
	return out, nil
}

// LineDiff shows the lines only in a (-) and only in b (+), with up to two
// lines of context around each change.
func LineDiff(a, b string) string {
	dmp := diffmatchpatch.New()
	ca, cb, lines := dmp.DiffLinesToChars(a, b)
	diffs := dmp.DiffCharsToLines(dmp.DiffMain(ca, cb, false), lines)
	var out strings.Builder
	for i, d := range diffs {
		ls := strings.SplitAfter(d.Text, "\n")
		if len(ls) > 0 && ls[len(ls)-1] == "" {
			ls = ls[:len(ls)-1]
		}
		switch d.Type {
		case diffmatchpatch.DiffDelete:
			for _, l := range ls {
				out.WriteString("-" + strings.TrimSuffix(l, "\n") + "\n")
			}
		case diffmatchpatch.DiffInsert:
			for _, l := range ls {
				out.WriteString("+" + strings.TrimSuffix(l, "\n") + "\n")
			}
		case diffmatchpatch.DiffEqual:
			// Context: the last two lines before a change, the first two after.
			var keep []string
			if i > 0 {
				keep = append(keep, ls[:min(2, len(ls))]...)
			}
			if i < len(diffs)-1 {
				if len(ls) > 4 && i > 0 {
					keep = append(keep, "...\n")
				}
				if len(ls) > 2 || i == 0 {
					keep = append(keep, ls[max(0, len(ls)-2):]...)
				}
			}
			for _, l := range keep {
				out.WriteString(" " + strings.TrimSuffix(l, "\n") + "\n")
			}
		}
	}
	return out.String()
}
