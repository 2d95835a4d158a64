package synchronizer

// The apply's file system layer. Every write, chown, chmod, rename and
// removal of an apply is done through a directory descriptor reached from
// the apply Root one name at a time with O_NOFOLLOW|O_DIRECTORY: a symlink
// anywhere on the way (a link the commit made, or one a local account put
// there) makes the open fail instead of being followed. Owner, mode and
// extended attributes are set with fchown/fchmod/fsetxattr on a descriptor
// opened the same way, so a path swapped after the open changes nothing
// but the object that was opened. See docs/sync.md, "The apply boundary".

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC

// applyFS holds one apply's descriptors: the apply Root and, per tracked
// root, the folder that holds it.
type applyFS struct {
	roots   []string // this node's tracked roots, clean and absolute
	base    int      // the apply Root ("" is /)
	parents map[string]int
	// lstat results of the link check (the disk does not change while
	// links are checked)
	seen map[string]diskEntry
}

type diskEntry struct {
	typ, target string
	exists      bool
}

func openApplyFS(root string, roots []string) (*applyFS, error) {
	if root == "" {
		root = "/"
	}
	fd, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("apply root %s: %w", root, err)
	}
	f := &applyFS{base: fd, parents: map[string]int{}, seen: map[string]diskEntry{}}
	for _, r := range roots {
		if r = filepath.Clean(r); filepath.IsAbs(r) && r != "/" {
			f.roots = append(f.roots, r)
		}
	}
	return f, nil
}

func (f *applyFS) close() {
	for _, fd := range f.parents {
		unix.Close(fd)
	}
	unix.Close(f.base)
}

func openat(dir int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, mode)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

func dup(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }

// walkError says where a walk stopped.
type walkError struct {
	Path string // in the commit's names
	Err  error
}

func (e *walkError) Error() string {
	switch {
	case errors.Is(e.Err, unix.ELOOP):
		return printable(e.Path) + " is a symlink (an apply never follows one)"
	case errors.Is(e.Err, unix.ENOTDIR):
		return printable(e.Path) + " is not a directory"
	case errors.Is(e.Err, unix.ENOENT):
		return printable(e.Path) + " does not exist"
	}
	return printable(e.Path) + ": " + e.Err.Error()
}

func (e *walkError) Unwrap() error { return e.Err }

// walk opens the directory reached from dir (named at) through names, each
// of them a real directory. The caller closes the result.
func walk(dir int, at string, names []string) (int, error) {
	return walkMaybeCreate(dir, at, names, false)
}

// walkMaybeCreate is walk; with create, a missing directory on the way is
// made (0755, by this process: root on a node), as os.MkdirAll would but
// without following a symlink.
func walkMaybeCreate(dir int, at string, names []string, create bool) (int, error) {
	cur, err := dup(dir)
	if err != nil {
		return -1, err
	}
	for _, n := range names {
		at = filepath.Join(at, n)
		if n == "" || n == "." || n == ".." || strings.Contains(n, "/") {
			unix.Close(cur)
			return -1, &walkError{at, unix.EINVAL}
		}
		next, err := openat(cur, n, dirFlags, 0)
		if create && errors.Is(err, unix.ENOENT) {
			if err = unix.Mkdirat(cur, n, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = openat(cur, n, dirFlags, 0)
			}
		}
		unix.Close(cur)
		if err != nil {
			return -1, &walkError{at, err}
		}
		cur = next
	}
	return cur, nil
}

func splitAbs(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// rootOf returns the outermost tracked root that holds p, or "".
func (f *applyFS) rootOf(p string) string {
	best := ""
	for _, r := range f.roots {
		if (p == r || strings.HasPrefix(p, r+"/")) && (best == "" || len(r) < len(best)) {
			best = r
		}
	}
	return best
}

// rootParent is the folder holding tracked root r: this node's own, opened
// once per apply, from the apply Root without following a symlink either.
func (f *applyFS) rootParent(r string) (int, error) {
	if fd, ok := f.parents[r]; ok {
		return fd, nil
	}
	// Missing folders above a root are made (a root under a folder a
	// package has not made yet here); a symlink on the way still stops it.
	fd, err := walkMaybeCreate(f.base, "/", splitAbs(filepath.Dir(r)), true)
	if err != nil {
		return -1, fmt.Errorf("the folder of tracked root %s: %w", r, err)
	}
	f.parents[r] = fd
	return fd, nil
}

// parent opens the folder that holds p, beneath p's tracked root (for the
// root itself: the folder that holds the root), and returns p's last name.
// refusal says the folder is not there as a real directory (refused, or a
// symlink stands on the way); err is anything else.
func (f *applyFS) parent(p string) (fd int, name string, refusal string, err error) {
	r := f.rootOf(p)
	if r == "" {
		return -1, "", "outside the tracked paths of this node", nil
	}
	pfd, err := f.rootParent(r)
	if err != nil {
		return -1, "", "", err
	}
	names := append([]string{filepath.Base(r)}, splitAbs(strings.TrimPrefix(p, r))...)
	fd, err = walk(pfd, filepath.Dir(r), names[:len(names)-1])
	var we *walkError
	if errors.As(err, &we) && !errors.Is(err, unix.EMFILE) && !errors.Is(err, unix.ENFILE) && !errors.Is(err, unix.ENOMEM) {
		return -1, "", "its folder is not a real directory here: " + we.Error(), nil
	}
	if err != nil {
		return -1, "", "", err
	}
	return fd, names[len(names)-1], "", nil
}

// openDir opens directory d when it is a tracked path or the folder of a
// tracked root; ok is false otherwise.
func (f *applyFS) openDir(d string) (int, bool) {
	if f.rootOf(d) != "" {
		pfd, name, refusal, err := f.parent(d)
		if refusal != "" || err != nil {
			return -1, false
		}
		defer unix.Close(pfd)
		fd, err := openat(pfd, name, dirFlags, 0)
		return fd, err == nil
	}
	for _, r := range f.roots {
		if filepath.Dir(r) == d {
			pfd, err := f.rootParent(r)
			if err != nil {
				return -1, false
			}
			fd, err := dup(pfd)
			return fd, err == nil
		}
	}
	return -1, false
}

func fstatat(dir int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func isDir(st unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }

// removeAt removes name in dir as os.Remove would: a file or a symlink, or
// an empty directory.
func removeAt(dir int, name string) error {
	err := unix.Unlinkat(dir, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return err
	}
	if err2 := unix.Unlinkat(dir, name, unix.AT_REMOVEDIR); err2 == nil {
		return nil
	} else if !errors.Is(err2, unix.ENOTDIR) {
		err = err2
	}
	return err
}

// removeAllAt removes name in dir and all below it, following no link.
func removeAllAt(dir int, name string, depth int) {
	err := unix.Unlinkat(dir, name, 0)
	if err == nil || !(errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM)) || depth > 32 {
		return
	}
	fd, err := openat(dir, name, dirFlags, 0)
	if err != nil {
		return
	}
	for _, n := range readNames(fd) {
		removeAllAt(fd, n, depth+1)
	}
	unix.Close(fd)
	unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
}

// readNames lists directory fd (left open).
func readNames(fd int) []string {
	d, err := dup(fd)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	return names
}

// clearStaging removes staging folders an interrupted apply (a kill, a
// power loss) left in the snapshot's directories.
func (f *applyFS) clearStaging(s *Snapshot) {
	dirs := map[string]bool{}
	for p, e := range s.Entries {
		dirs[filepath.Dir(p)] = true
		if e.Type == TypeDir {
			dirs[p] = true
		}
	}
	for d := range dirs {
		fd, ok := f.openDir(d)
		if !ok {
			continue
		}
		for _, n := range readNames(fd) {
			if strings.HasPrefix(n, StagePrefix) {
				removeAllAt(fd, n, 0)
			}
		}
		unix.Close(fd)
	}
}

// stage is a 0700 folder beside the target, on the same file system.
type stage struct {
	parent int
	name   string
	fd     int
}

func makeStage(parent int) (*stage, error) {
	for range 100 {
		name := StagePrefix + strconv.FormatUint(rand.Uint64(), 36)
		err := unix.Mkdirat(parent, name, 0o700)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, err
		}
		fd, err := openat(parent, name, dirFlags, 0)
		if err != nil {
			unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
			return nil, err
		}
		return &stage{parent, name, fd}, nil
	}
	return nil, errors.New("no free staging name")
}

func (s *stage) remove() {
	unix.Unlinkat(s.fd, "f", 0)
	unix.Unlinkat(s.fd, "l", 0)
	unix.Close(s.fd)
	unix.Unlinkat(s.parent, s.name, unix.AT_REMOVEDIR)
}

// putInPlace renames the staged entry over name in dir (an empty directory
// there is removed first) and syncs dir.
func (s *stage) putInPlace(staged string, dir int, name string) error {
	if st, err := fstatat(dir, name); err == nil && isDir(st) {
		if err := unix.Unlinkat(dir, name, unix.AT_REMOVEDIR); err != nil {
			return fmt.Errorf("a directory stands where it goes: %w", err)
		}
	}
	if err := unix.Renameat(s.fd, staged, dir, name); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return unix.Fsync(dir)
}

// stageFile writes data as name in dir: in a staging folder, with its
// final owner, mode and attributes set on the descriptor, synced, then
// renamed into place.
func stageFile(dir int, name string, data []byte, mode uint32, uid, gid int, xattrs string) error {
	s, err := makeStage(dir)
	if err != nil {
		return err
	}
	defer s.remove()
	fd, err := openat(s.fd, "f", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	err = writeAll(f, data)
	if err == nil {
		err = unix.Fchown(fd, uid, gid)
	}
	if err == nil {
		err = unix.Fchmod(fd, mode)
	}
	if err == nil {
		if err = writeXattrsFd(fd, xattrs); err != nil {
			err = fmt.Errorf("extended attributes: %w", err)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return s.putInPlace("f", dir, name)
}

func writeAll(w io.Writer, data []byte) error {
	_, err := w.Write(data)
	return err
}

// stageSymlink makes name in dir a symlink to target, the same way.
func stageSymlink(dir int, name, target string, uid, gid int) error {
	s, err := makeStage(dir)
	if err != nil {
		return err
	}
	defer s.remove()
	if err := unix.Symlinkat(target, s.fd, "l"); err != nil {
		return err
	}
	unix.Fchownat(s.fd, "l", uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	return s.putInPlace("l", dir, name)
}

// readlinkAt reads symlink name in dir.
func readlinkAt(dir int, name string) (string, error) {
	for n := 256; n <= 1<<16; n *= 4 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
	}
	return "", unix.ENAMETOOLONG
}

// current reads the regular file name in dir as it is now, without
// following a link or blocking on a fifo; ok is false when there is none.
// meta says whether owner, mode and attributes are already the wanted ones.
func current(dir int, name string, uid, gid int, mode uint64, xattrs string) (data []byte, ok, meta bool) {
	fd, err := openat(dir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false, false
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, false
	}
	meta = int(st.Uid) == uid && int(st.Gid) == gid && uint64(st.Mode&0o7777) == mode && readXattrsFd(fd) == xattrs
	data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, false, false
	}
	return data, true, meta
}

// lookup says what is at p on the disk now (p in the commit's names, under
// the apply Root), reached without following a link.
func (f *applyFS) lookup(p string) diskEntry {
	if e, ok := f.seen[p]; ok {
		return e
	}
	e := diskEntry{}
	if p == "/" {
		e = diskEntry{typ: TypeDir, exists: true}
	} else if fd, err := walk(f.base, "/", splitAbs(filepath.Dir(p))); err == nil {
		name := filepath.Base(p)
		if st, err := fstatat(fd, name); err == nil {
			e.exists = true
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				e.typ = TypeDir
			case unix.S_IFLNK:
				e.typ = TypeSymlink
				if e.target, err = readlinkAt(fd, name); err != nil {
					e = diskEntry{}
				}
			default:
				e.typ = TypeFile
			}
		}
		unix.Close(fd)
	}
	f.seen[p] = e
	return e
}
