package synchronizer

import (
	"encoding/base64"
	"errors"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Extended attributes that are configuration: the user namespace and POSIX
// ACLs. security.* (SELinux labels, capabilities) and trusted.* are the
// node's own and are neither recorded nor written.
func xattrTracked(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// xattrOps reads and writes the extended attributes of one file: by path
// (not following a symlink), or through an open descriptor (the apply).
type xattrOps struct {
	list   func(buf []byte) (int, error)
	get    func(name string, buf []byte) (int, error)
	set    func(name string, val []byte) error
	remove func(name string) error
}

func pathXattrs(p string) xattrOps {
	return xattrOps{
		list:   func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		get:    func(name string, buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) },
		set:    func(name string, val []byte) error { return unix.Lsetxattr(p, name, val, 0) },
		remove: func(name string) error { return unix.Lremovexattr(p, name) },
	}
}

func fdXattrs(fd int) xattrOps {
	return xattrOps{
		list:   func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		get:    func(name string, buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) },
		set:    func(name string, val []byte) error { return unix.Fsetxattr(fd, name, val, 0) },
		remove: func(name string) error { return unix.Fremovexattr(fd, name) },
	}
}

// readXattrs returns the tracked extended attributes of p (not following a
// symlink) as "name=base64" pairs joined by ";", sorted: one comparable
// string for the meta file.
func readXattrs(p string) string { return pathXattrs(p).read() }

// writeXattrs makes p's tracked extended attributes exactly those of want.
func writeXattrs(p, want string) error { return pathXattrs(p).write(want) }

// readXattrsFd and writeXattrsFd do the same on an open file or directory.
func readXattrsFd(fd int) string              { return fdXattrs(fd).read() }
func writeXattrsFd(fd int, want string) error { return fdXattrs(fd).write(want) }

func (x xattrOps) read() string {
	buf := make([]byte, 4096)
	n, err := x.list(buf)
	if errors.Is(err, unix.ERANGE) {
		if sz, err2 := x.list(nil); err2 == nil {
			buf = make([]byte, sz)
			n, err = x.list(buf)
		}
	}
	if err != nil || n == 0 {
		return ""
	}
	var pairs []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if !xattrTracked(name) {
			continue
		}
		val := make([]byte, 65536)
		vn, err := x.get(name, val)
		if err != nil {
			continue
		}
		pairs = append(pairs, name+"="+base64.StdEncoding.EncodeToString(val[:vn]))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ";")
}

func (x xattrOps) write(want string) error {
	have := map[string]bool{}
	for _, kv := range strings.Split(x.read(), ";") {
		if name, _, ok := strings.Cut(kv, "="); ok {
			have[name] = true
		}
	}
	for _, kv := range strings.Split(want, ";") {
		name, v, ok := strings.Cut(kv, "=")
		if !ok || !xattrTracked(name) {
			continue
		}
		val, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return err
		}
		if err := x.set(name, val); err != nil {
			return err
		}
		delete(have, name)
	}
	for name := range have {
		x.remove(name)
	}
	return nil
}
