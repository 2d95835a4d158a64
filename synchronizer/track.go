// Package synchronizer keeps the primary's configuration in a git
// repository (go-git, bare, under the state folder) and replays it on the
// secondary.
//
// The repository's tree:
//
//	files/<absolute path>           the content of each tracked regular file
//	meta/<directory>/@meta.toml     per tracked directory: its entries' type,
//	                                mode, owner and group by name, symlink
//	                                targets (data, never a script)
//	refused.toml                    what was left out, with path and reason
//
// A commit costs what changed, not the tree: the model below knows every
// tracked entry, so a change hashes only the changed files and rebuilds only
// their directories' meta blobs and the trees above them.
package synchronizer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/sentryha/sentry/internal/safetoml"
)

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
)

// Entry is one tracked path's metadata.
type Entry struct {
	Name   string `toml:"name"`
	Type   string `toml:"type"`
	Mode   string `toml:"mode"` // octal permission bits, e.g. "0644"
	Owner  string `toml:"owner"`
	Group  string `toml:"group"`
	Target string `toml:"target,omitempty"` // symlinks
	// Encrypted: the content in the repository is the file encrypted to
	// the cluster key; MAC tells a change without decrypting.
	Encrypted bool   `toml:"encrypted,omitempty"`
	MAC       string `toml:"mac,omitempty"`
	// Xattrs are the user.* extended attributes and POSIX ACLs, as
	// "name=base64" pairs joined by ";".
	Xattrs string `toml:"xattrs,omitempty"`

	// Not stored in meta: the blob of a file, and what the last stat said,
	// to tell whether it must be read again.
	blob  [20]byte
	size  int64
	mtime int64
	ino   uint64
}

// Refusal is a path left out of the repository, and why.
type Refusal struct {
	Path   string `toml:"path" json:"path"`
	Reason string `toml:"reason" json:"reason"`
}

// OverlayDir holds per-node files on the primary: OverlayDir/<node>/<path>
// replaces <path> on that node (its hostname, addresses, node-specific
// files). In the repository they live under nodes/<node>/, and in a
// Snapshot under OverlayDir whatever Policy.OverlayDir the primary read
// them from.
const OverlayDir = "/etc/sentry/nodes"

// ClusterDir holds what belongs to the cluster rather than to a service:
// the machines' hardware profiles (bootcheck). It is always tracked.
const ClusterDir = "/etc/sentry/cluster"

// overlayOf splits a path under OverlayDir into node and the path it
// replaces ("" for the node's own folder).
func overlayOf(p string) (node, rel string, ok bool) { return overlayIn(OverlayDir, p) }

// overlayIn is overlayOf for overlays kept in dir.
func overlayIn(dir, p string) (node, rel string, ok bool) {
	rest, found := strings.CutPrefix(p, dir+"/")
	if !found {
		return "", "", false
	}
	node, rel, _ = strings.Cut(rest, "/")
	if rel != "" {
		rel = "/" + rel
	}
	return node, rel, node != ""
}

// treeFile is where a tracked file's content lives in the repository
// (overlays: the folder of the per-node files on disk).
func treeFile(overlays, p string) string {
	if node, rel, ok := overlayIn(overlays, p); ok {
		return "nodes/" + node + "/files" + rel
	}
	return "files" + p
}

// treeMeta is where a directory's @meta.toml lives in the repository.
func treeMeta(overlays, dir string) string {
	if node, rel, ok := overlayIn(overlays, dir); ok {
		return "nodes/" + node + "/meta" + rel + "/" + MetaName
	}
	if dir == "/" {
		return "meta/" + MetaName
	}
	return "meta" + dir + "/" + MetaName
}

// Policy says what may cross from the primary to the secondary.
type Policy struct {
	Roots   []string // tracked roots: directories or single files
	Exclude []string // glob patterns on file names
	// AllowExec lists executables a module declares (none yet): absolute paths.
	AllowExec map[string]bool
	// NodeKeys are path patterns (filepath.Match) that belong to each node
	// and are never shared, besides the node identity (modules name them).
	NodeKeys []string
	// Secrets, when set, encrypts secret files instead of leaving them out.
	Secrets *Secrets
	// OverlayDir is where the per-node files are on disk ("": OverlayDir).
	OverlayDir string
}

// overlays is the folder of the per-node files on disk.
func (p *Policy) overlays() string {
	if p == nil || p.OverlayDir == "" {
		return OverlayDir
	}
	return p.OverlayDir
}

// DefaultRoots are tracked when the configuration names no others. Modules
// (issue 8) will supply these per service.
var DefaultRoots = []string{
	"/etc/nginx", "/etc/postfix", "/etc/dovecot", "/etc/postgresql",
	"/etc/mysql", "/etc/samba", "/etc/ssh/sshd_config",
}

// identityPaths are a node's own identity: never shared.
var identityPaths = []string{"/etc/machine-id", "/etc/hostname", "/etc/ssh/ssh_host_*"}

// secretNames are file names that hold passwords or keys by convention.
var secretNames = []string{"shadow", "gshadow", "*.key", "sasl_passwd", "sasl_passwd.db", "*.p12", "*.pfx", "debian.cnf"}

// classify decides whether path may be tracked. It returns the entry, or a
// refusal reason; secret says the reason is that the file is a secret (which
// Secrets may encrypt instead). fi comes from Lstat.
func (p *Policy) classify(path string, fi fs.FileInfo) (e *Entry, reason string, secret bool) {
	e, reason = p.classifyType(path, fi)
	if reason != "" || e.Type != TypeFile {
		return e, reason, false
	}
	for _, g := range secretNames {
		if ok, _ := filepath.Match(g, e.Name); ok {
			return e, "a secret by its name (" + g + ")", true
		}
	}
	return e, "", false
}

func (p *Policy) classifyType(path string, fi fs.FileInfo) (*Entry, string) {
	name := filepath.Base(path)
	for _, g := range identityPaths {
		if ok, _ := filepath.Match(g, path); ok {
			return nil, "node identity (never shared)"
		}
	}
	for _, g := range p.NodeKeys {
		if ok, _ := filepath.Match(g, path); ok {
			return nil, "a per-node key (" + g + ", declared by a module): never shared"
		}
	}
	mode := fi.Mode()
	e := &Entry{Name: name, Mode: fmt.Sprintf("%04o", mode.Perm())}
	switch {
	case mode.IsDir():
		e.Type = TypeDir
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return nil, "unreadable symlink: " + err.Error()
		}
		abs := target
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filepath.Dir(path), target)
		}
		if !p.inRoots(filepath.Clean(abs)) {
			return nil, fmt.Sprintf("symlink to %s, outside the tracked paths", target)
		}
		e.Type, e.Target = TypeSymlink, target
		e.Mode = "0777"
	case mode.IsRegular():
		e.Type = TypeFile
	case mode&fs.ModeNamedPipe != 0:
		return nil, "a fifo (only files, directories and symlinks are tracked)"
	case mode&fs.ModeSocket != 0:
		return nil, "a socket (only files, directories and symlinks are tracked)"
	case mode&fs.ModeDevice != 0:
		return nil, "a device (only files, directories and symlinks are tracked)"
	default:
		return nil, "not a file, directory or symlink"
	}
	if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		return nil, "setuid or setgid"
	}
	if e.Type == TypeFile {
		if mode.Perm()&0o111 != 0 && !p.AllowExec[path] {
			return nil, "executable (exec bit set) and declared by no module"
		}
	}
	if e.Type != TypeSymlink {
		e.Xattrs = readXattrs(path)
	}
	// What the secondary would refuse is refused here already, so that
	// it is listed in refused.toml instead of failing every apply there.
	if unprintable(name) || (e.Type == TypeSymlink && unprintable(e.Target)) {
		return nil, "a name or link target with control characters or not UTF-8: " + printable(name)
	}
	if e.Type != TypeSymlink && mode.Perm()&0o002 != 0 {
		return nil, "world-writable (mode " + e.Mode + "): anyone on this node could change it"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if reason := ownership(e.Type, int(st.Uid), int(st.Gid), uint64(mode.Perm())); reason != "" {
			return nil, reason
		}
		e.Owner, e.Group = userName(st.Uid), groupName(st.Gid)
		e.ino, e.mtime = st.Ino, st.Mtim.Nano()
	}
	e.size = fi.Size()
	return e, ""
}

// checkContent refuses file contents that must not cross: programs (ELF or
// a #! line) and, as secrets, private keys.
func (p *Policy) checkContent(path string, data []byte) (reason string, secret bool) {
	if p.AllowExec[path] {
		return "", false
	}
	switch {
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		return "an ELF program, declared by no module", false
	case bytes.HasPrefix(data, []byte("#!")):
		return "a script (#! line), declared by no module", false
	case bytes.Contains(data, []byte("PRIVATE KEY-----")):
		return "holds a private key", true
	}
	return "", false
}

func (p *Policy) inRoots(abs string) bool {
	for _, r := range p.Roots {
		if abs == r || strings.HasPrefix(abs, r+"/") {
			return true
		}
	}
	return false
}

// StagePrefix names the staging folders of an apply; never tracked.
const StagePrefix = ".sentry-stage-"

func (p *Policy) excluded(name string) bool {
	if strings.HasPrefix(name, StagePrefix) {
		return true
	}
	for _, g := range p.Exclude {
		if ok, _ := filepath.Match(g, name); ok {
			return true
		}
	}
	return false
}

var (
	idMu   sync.Mutex
	users  = map[uint32]string{}
	groups = map[uint32]string{}
)

func userName(uid uint32) string {
	idMu.Lock()
	defer idMu.Unlock()
	if n, ok := users[uid]; ok {
		return n
	}
	n := strconv.Itoa(int(uid))
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	users[uid] = n
	return n
}

func groupName(gid uint32) string {
	idMu.Lock()
	defer idMu.Unlock()
	if n, ok := groups[gid]; ok {
		return n
	}
	n := strconv.Itoa(int(gid))
	if g, err := user.LookupGroupId(n); err == nil {
		n = g.Name
	}
	groups[gid] = n
	return n
}

// readLimited reads a tracked file, refusing what is too large to be config.
const maxFileSize = 16 << 20

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, errors.New("larger than 16 MiB")
	}
	return b, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func fileOwner(fi fs.FileInfo) [2]int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return [2]int{int(st.Uid), int(st.Gid)}
	}
	return [2]int{-1, -1}
}

// decodeRepoTOML decodes a commit's @meta.toml or refused.toml. The
// primary writes them and the secondary reads them, so they are bounded
// before parsing (internal/safetoml: 1 MiB, about 11,000 entries of one
// directory); an error names the line and the limit, not the file.
func decodeRepoTOML(b []byte, v any) error {
	_, err := safetoml.Decode("", b, v, safetoml.Peer())
	return err
}
