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

// readXattrs returns the tracked extended attributes of p (not following a
// symlink) as "name=base64" pairs joined by ";", sorted: one comparable
// string for the meta file.
func readXattrs(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if errors.Is(err, unix.ERANGE) {
		if sz, err2 := unix.Llistxattr(p, nil); err2 == nil {
			buf = make([]byte, sz)
			n, err = unix.Llistxattr(p, buf)
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
		vn, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			continue
		}
		pairs = append(pairs, name+"="+base64.StdEncoding.EncodeToString(val[:vn]))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ";")
}

// writeXattrs makes p's tracked extended attributes exactly those of want.
func writeXattrs(p, want string) error {
	have := map[string]bool{}
	for _, kv := range strings.Split(readXattrs(p), ";") {
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
		if err := unix.Lsetxattr(p, name, val, 0); err != nil {
			return err
		}
		delete(have, name)
	}
	for name := range have {
		unix.Lremovexattr(p, name)
	}
	return nil
}
