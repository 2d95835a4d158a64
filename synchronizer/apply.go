package synchronizer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"golang.org/x/sys/unix"
)

// Snapshot is what one commit says the tracked paths should be.
type Snapshot struct {
	Commit  plumbing.Hash
	Entries map[string]Entry         // absolute path -> metadata
	Blobs   map[string]plumbing.Hash // absolute path -> content (files)
	// Refused are paths that existed on the primary at that commit but were
	// left out (a secret, a script...): an apply must never delete them.
	Refused map[string]bool
}

// ReadSnapshot reads a commit's meta and files trees.
func ReadSnapshot(st storer.EncodedObjectStorer, commit plumbing.Hash) (*Snapshot, error) {
	s := &Snapshot{Commit: commit, Entries: map[string]Entry{}, Blobs: map[string]plumbing.Hash{}, Refused: map[string]bool{}}
	if commit.IsZero() {
		return s, nil
	}
	c, err := object.GetCommit(st, commit)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, err
	}
	walker := object.NewTreeWalker(t, true, nil)
	defer walker.Close()
	for {
		name, te, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !te.Mode.IsFile() {
			continue
		}
		// nodes/<node>/files|meta/... are the overlays, kept under their
		// OverlayDir paths (ForNode maps them onto the paths they replace).
		tp := name
		prefix := ""
		if rest, ok := strings.CutPrefix(name, "nodes/"); ok {
			node, r, _ := strings.Cut(rest, "/")
			if node == "" || strings.Contains(node, "..") {
				return nil, fmt.Errorf("commit %s: bad overlay path %q", commit.String()[:12], name)
			}
			tp, prefix = r, OverlayDir+"/"+node
		}
		if name == "refused.toml" {
			b, err := readBlob(st, te.Hash)
			if err != nil {
				return nil, err
			}
			var list struct {
				Refused []Refusal `toml:"refused"`
			}
			if err := decodeRepoTOML(b, &list); err != nil {
				return nil, fmt.Errorf("commit %s: refused.toml: %w", commit.String()[:12], err)
			}
			for _, r := range list.Refused {
				s.Refused[r.Path] = true
			}
			continue
		}
		switch {
		case strings.HasPrefix(tp, "files/"):
			s.Blobs[prefix+"/"+strings.TrimPrefix(tp, "files/")] = te.Hash
		case (strings.HasPrefix(tp, "meta/") || tp == "meta/"+MetaName) && strings.HasSuffix(tp, MetaName):
			dir := prefix + "/" + strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(tp, "meta/"), MetaName), "/")
			dir = filepath.Clean(dir)
			b, err := readBlob(st, te.Hash)
			if err != nil {
				return nil, err
			}
			var m Meta
			if err := decodeRepoTOML(b, &m); err != nil {
				return nil, fmt.Errorf("commit %s: %s: %w", commit.String()[:12], name, err)
			}
			if m.SchemaVersion > MetaSchemaVersion {
				return nil, fmt.Errorf("commit %s: %s has schema %d, this sentry knows %d: upgrade sentry on this node",
					commit.String()[:12], name, m.SchemaVersion, MetaSchemaVersion)
			}
			for _, e := range m.Entries {
				if e.Name == "" || strings.Contains(e.Name, "/") || e.Name == "." || e.Name == ".." {
					return nil, fmt.Errorf("commit %s: %s: bad entry name %q", commit.String()[:12], name, e.Name)
				}
				s.Entries[filepath.Join(dir, e.Name)] = e
			}
		}
	}
	return s, nil
}

func readBlob(st storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	obj, err := st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	r, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, maxFileSize+1))
}

// ForNode returns the snapshot as node should have it: the common paths,
// with node's overlay files and symlinks in place of theirs, and no
// overlay of any node as a path of its own.
func (s *Snapshot) ForNode(node string) *Snapshot {
	out := &Snapshot{Commit: s.Commit, Entries: map[string]Entry{}, Blobs: map[string]plumbing.Hash{}, Refused: s.Refused}
	for p, e := range s.Entries {
		if p == OverlayDir || strings.HasPrefix(p, OverlayDir+"/") {
			continue
		}
		out.Entries[p] = e
		if h, ok := s.Blobs[p]; ok {
			out.Blobs[p] = h
		}
	}
	for p, e := range s.Entries {
		n, rel, ok := overlayOf(p)
		if !ok || n != node || rel == "" || e.Type == TypeDir {
			continue
		}
		out.Entries[rel] = e
		if h, ok := s.Blobs[p]; ok {
			out.Blobs[rel] = h
		} else {
			delete(out.Blobs, rel)
		}
	}
	return out
}

// NodeDiff is one overlay file against the common version.
type NodeDiff struct {
	Node string `json:"node"`
	Path string `json:"path"`
	Diff string `json:"diff"` // - common, + the node's
}

// NodeDiffs lists what differs by design between the nodes: every overlay
// file, with its diff against the common file.
func NodeDiffs(st storer.EncodedObjectStorer, s *Snapshot) ([]NodeDiff, error) {
	var out []NodeDiff
	for _, p := range sortedKeys(s.Entries) {
		n, rel, ok := overlayOf(p)
		if !ok || rel == "" || s.Entries[p].Type != TypeFile {
			continue
		}
		theirs, err := readBlob(st, s.Blobs[p])
		if err != nil {
			return nil, err
		}
		common := []byte{}
		if h, ok := s.Blobs[rel]; ok {
			if common, err = readBlob(st, h); err != nil {
				return nil, err
			}
		}
		out = append(out, NodeDiff{Node: n, Path: rel, Diff: LineDiff(string(common), string(theirs))})
	}
	return out, nil
}

// Applier writes a snapshot onto this node's disk.
type Applier struct {
	Store  storer.EncodedObjectStorer
	Policy *Policy // the same checks as the primary's, applied again here
	// Root prefixes every path (tests apply into a temp folder); "" is /.
	Root string
	// Secrets decrypts the files the primary sent encrypted.
	Secrets *Secrets

	// beforeChange, when set (tests only), runs after a directory is opened
	// and before its owner and mode are changed.
	beforeChange func(p string)
}

// content returns a file's plaintext as the snapshot has it.
func (a *Applier) content(p string, e Entry, h plumbing.Hash) ([]byte, error) {
	data, err := readBlob(a.Store, h)
	if err == nil && len(data) > maxFileSize {
		return nil, errors.New("larger than 16 MiB (not configuration)")
	}
	if err != nil || !e.Encrypted {
		return data, err
	}
	if a.Secrets == nil {
		return nil, fmt.Errorf("%s is encrypted to the cluster key, and this node has none", p)
	}
	pt, err := a.Secrets.Decrypt(data)
	if err != nil {
		return nil, fmt.Errorf("%s: decrypt: %w", p, err)
	}
	return pt, nil
}

// ApplyResult says what an apply did.
type ApplyResult struct {
	Written []string  `json:"written,omitempty"`
	Removed []string  `json:"removed,omitempty"`
	Drift   []string  `json:"drift,omitempty"` // local edits found (and overwritten)
	Refused []Refusal `json:"refused,omitempty"`
}

func (r *ApplyResult) refuse(p, reason string) {
	r.Refused = append(r.Refused, Refusal{Path: printable(p), Reason: reason})
}

// Apply brings the disk from snapshot old (what was applied last) to new.
// Each file is written in a 0700 staging folder beside it, with its final
// owner and mode, fsynced, then renamed into place: never half-written,
// never readable by others in between.
//
// Every operation goes through directory descriptors opened from the apply
// Root without following any symlink (apply_fs.go), so nothing lands
// outside the tracked roots whatever links the commit or a local account
// made; links are judged by where the kernel will take them once the
// commit is in place (apply_links.go). See docs/sync.md, "The apply
// boundary".
func (a *Applier) Apply(old, new *Snapshot) (*ApplyResult, error) {
	res := &ApplyResult{}
	fs, err := openApplyFS(a.Root, a.Policy.Roots)
	if err != nil {
		return res, err
	}
	defer fs.close()
	fs.clearStaging(new)
	paths := sortedKeys(new.Entries)
	// Directories first, parents before children; links after all files
	// and directories, once the disk holds what they are judged against.
	sort.SliceStable(paths, func(i, j int) bool { return strings.Count(paths[i], "/") < strings.Count(paths[j], "/") })
	type pendingLink struct {
		p        string
		uid, gid int
	}
	var links []pendingLink
	for _, p := range paths {
		e := new.Entries[p]
		if reason := a.check(p, e); reason != "" {
			res.refuse(p, reason)
			continue
		}
		uid, gid, err := ids(e)
		if err != nil {
			return res, fmt.Errorf("%s: %w", printable(p), err)
		}
		mode, err := strconv.ParseUint(e.Mode, 8, 32)
		if err != nil || mode > 0o777 {
			return res, fmt.Errorf("%s: bad mode %q", printable(p), e.Mode)
		}
		if reason := ownership(e.Type, uid, gid, mode); reason != "" {
			res.refuse(p, reason)
			continue
		}
		oe, hadOld := old.Entries[p]
		same := hadOld && oe == e && old.Blobs[p] == new.Blobs[p]
		switch e.Type {
		case TypeDir:
			written, refusal, err := a.applyDir(fs, p, e, uid, gid, uint32(mode))
			if err != nil {
				return res, fmt.Errorf("%s: %w", printable(p), err)
			}
			if refusal != "" {
				res.refuse(p, refusal)
			} else if written {
				res.Written = append(res.Written, p)
			}
		case TypeSymlink:
			links = append(links, pendingLink{p, uid, gid})
		case TypeFile:
			data, err := a.content(p, e, new.Blobs[p])
			if err != nil {
				res.refuse(p, err.Error())
				continue
			}
			dir, name, refusal, err := fs.parent(p)
			if err != nil {
				return res, fmt.Errorf("%s: %w", printable(p), err)
			}
			if refusal != "" {
				res.refuse(p, refusal)
				continue
			}
			cur, isFile, meta := current(dir, name, uid, gid, mode, e.Xattrs)
			if isFile && bytes.Equal(cur, data) && meta {
				unix.Close(dir)
				continue
			}
			if same && isFile {
				res.Drift = append(res.Drift, p)
			}
			// A private key is expected in a file the primary encrypted; a
			// program never is.
			if reason, secret := a.Policy.checkContent(p, data); reason != "" && !(secret && e.Encrypted) {
				unix.Close(dir)
				res.refuse(p, reason)
				continue
			}
			err = stageFile(dir, name, data, uint32(mode), uid, gid, e.Xattrs)
			unix.Close(dir)
			if err != nil {
				return res, fmt.Errorf("%s: %w", printable(p), err)
			}
			res.Written = append(res.Written, p)
		default:
			res.refuse(p, "unknown type "+printable(e.Type))
		}
	}
	// Links, judged against what the disk holds now plus the commit's
	// other links.
	targets := map[string]string{}
	for _, l := range links {
		targets[l.p] = new.Entries[l.p].Target
	}
	refusedLinks := a.checkLinks(fs, targets)
	for _, l := range links {
		e := new.Entries[l.p]
		dir, name, refusal, err := fs.parent(l.p)
		if err != nil {
			return res, fmt.Errorf("%s: %w", printable(l.p), err)
		}
		if reason, ok := refusedLinks[l.p]; ok {
			res.refuse(l.p, reason)
			if refusal == "" {
				// The link this path held before (an older commit's) would
				// lead out as well: it goes.
				if st, err := fstatat(dir, name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
					if unix.Unlinkat(dir, name, 0) == nil {
						res.Removed = append(res.Removed, l.p)
					}
				}
				unix.Close(dir)
			}
			continue
		}
		if refusal != "" {
			res.refuse(l.p, refusal)
			continue
		}
		if t, err := readlinkAt(dir, name); err == nil && t == e.Target {
			unix.Close(dir)
			continue
		}
		err = stageSymlink(dir, name, e.Target, l.uid, l.gid)
		unix.Close(dir)
		if err != nil {
			return res, fmt.Errorf("%s: %w", printable(l.p), err)
		}
		res.Written = append(res.Written, l.p)
	}
	// What the old snapshot had and the new one does not: deepest first.
	var gone []string
	for p := range old.Entries {
		if _, ok := new.Entries[p]; !ok {
			gone = append(gone, p)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return len(gone[i]) > len(gone[j]) })
	for _, p := range gone {
		// A path the new commit left out (refused) still exists on the
		// primary: it is not the primary's to delete here. Nor is anything
		// outside this node's tracked paths.
		if !a.Policy.inRoots(p) || new.Refused[p] || underRefused(p, new.Refused) {
			continue
		}
		dir, name, refusal, err := fs.parent(p)
		if err != nil || refusal != "" {
			continue // not there as a real path: nothing of ours to remove
		}
		// A directory only if empty: never a file the secondary made.
		if removeAt(dir, name) == nil {
			res.Removed = append(res.Removed, p)
		}
		unix.Close(dir)
	}
	return res, nil
}

// applyDir makes p a directory with e's owner, mode and attributes, set on
// the opened directory. written says it was created.
func (a *Applier) applyDir(fs *applyFS, p string, e Entry, uid, gid int, mode uint32) (written bool, refusal string, err error) {
	dir, name, refusal, err := fs.parent(p)
	if err != nil || refusal != "" {
		return false, refusal, err
	}
	defer unix.Close(dir)
	st, err := fstatat(dir, name)
	if err == nil && !isDir(st) {
		if err := unix.Unlinkat(dir, name, 0); err != nil {
			return false, "", err
		}
		err = unix.ENOENT
	}
	if errors.Is(err, unix.ENOENT) {
		// 0700 until its owner and mode are set.
		if err := unix.Mkdirat(dir, name, 0o700); err != nil {
			return false, "", err
		}
		written = true
	} else if err != nil {
		return false, "", err
	}
	fd, err := openat(dir, name, dirFlags, 0)
	if err != nil {
		return written, "", fmt.Errorf("open: %w (replaced while being applied?)", err)
	}
	defer unix.Close(fd)
	if a.beforeChange != nil {
		a.beforeChange(p)
	}
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return written, "", fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return written, "", fmt.Errorf("chmod: %w", err)
	}
	if err := writeXattrsFd(fd, e.Xattrs); err != nil {
		return written, "", fmt.Errorf("extended attributes: %w", err)
	}
	return written, "", nil
}

func underRefused(p string, refused map[string]bool) bool {
	for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
		if refused[d] {
			return true
		}
	}
	return false
}

// check refuses entries that must not be written here, whatever the
// primary says: paths outside the tracked roots, setuid, specials, modes
// anyone may write, names that would garble a terminal or a log.
func (a *Applier) check(p string, e Entry) string {
	if p != filepath.Clean(p) || strings.Contains(p, "/../") || !filepath.IsAbs(p) {
		return "path is not clean"
	}
	if !a.Policy.inRoots(p) {
		return "outside the tracked paths of this node"
	}
	if unprintable(p) {
		return "the name holds a control character (a newline, a terminal escape, an invisible mark) or is not UTF-8"
	}
	for _, g := range identityPaths {
		if ok, _ := filepath.Match(g, p); ok {
			return "node identity (never shared)"
		}
	}
	m, err := strconv.ParseUint(e.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return "mode " + printable(e.Mode) + " (only permission bits are allowed)"
	}
	if e.Type != TypeSymlink && m&0o002 != 0 {
		return "world-writable (mode " + e.Mode + "): anyone on this node could change it"
	}
	if e.Type == TypeFile && m&0o111 != 0 && !a.Policy.AllowExec[p] {
		return "executable and declared by no module"
	}
	if e.Type == TypeSymlink {
		if unprintable(e.Target) || e.Target == "" {
			return "symlink whose target holds a control character (a newline, a terminal escape, an invisible mark), is not UTF-8 or is empty"
		}
		for _, r := range a.Policy.Roots {
			if filepath.Clean(r) == p {
				return "a tracked root is never replaced by a symlink"
			}
		}
		abs := e.Target
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(filepath.Dir(p), abs)
		}
		if !a.Policy.inRoots(filepath.Clean(abs)) {
			return "symlink to " + e.Target + ", outside the tracked paths"
		}
	}
	return ""
}

// firstLoginID is where Debian starts the ids of people's accounts
// (adduser.conf FIRST_UID/FIRST_GID; nobody and nogroup are 65534): ids
// below are root and the system accounts services run as.
const firstLoginID = 1000

// ownership refuses owners that would hand a tracked file or directory to
// a login account: owning it, or writing it through its group. The
// account this apply runs as is always allowed.
func ownership(typ string, uid, gid int, mode uint64) string {
	if typ == TypeSymlink {
		return "" // a link's owner opens nothing
	}
	if uid >= firstLoginID && uid != os.Geteuid() {
		return fmt.Sprintf("owned by uid %d, a login account (not root or a system account): it could change a service's configuration", uid)
	}
	if gid >= firstLoginID && mode&0o020 != 0 && gid != os.Getegid() {
		return fmt.Sprintf("group-writable by gid %d, a login account's group (not root's or a system account's)", gid)
	}
	return ""
}

// unprintable says s is not UTF-8 or holds a character that is not
// graphic: C0 and C1 controls (a newline, a terminal escape), DEL, and
// invisible format marks (bidirectional overrides).
func unprintable(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return true
		}
	}
	return false
}

// printable is s as it may be shown or logged: escaped when unprintable.
func printable(s string) string {
	if !unprintable(s) {
		return s
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}

func ids(e Entry) (int, int, error) {
	u, err := user.Lookup(e.Owner)
	if err != nil {
		if n, err2 := strconv.Atoi(e.Owner); err2 == nil {
			u = &user.User{Uid: strconv.Itoa(n)}
		} else {
			return 0, 0, fmt.Errorf("owner %q does not exist on this node", e.Owner)
		}
	}
	g, err := user.LookupGroup(e.Group)
	if err != nil {
		if n, err2 := strconv.Atoi(e.Group); err2 == nil {
			g = &user.Group{Gid: strconv.Itoa(n)}
		} else {
			return 0, 0, fmt.Errorf("group %q does not exist on this node", e.Group)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return uid, gid, nil
}
