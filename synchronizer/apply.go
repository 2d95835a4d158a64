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

	"github.com/BurntSushi/toml"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
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
			if _, err := toml.Decode(string(b), &list); err != nil {
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
			if _, err := toml.Decode(string(b), &m); err != nil {
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
}

// content returns a file's plaintext as the snapshot has it.
func (a *Applier) content(p string, e Entry, h plumbing.Hash) ([]byte, error) {
	data, err := readBlob(a.Store, h)
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

func (a *Applier) disk(p string) string { return filepath.Join(a.Root, p) }

// Apply brings the disk from snapshot old (what was applied last) to new.
// Each file is written in a 0700 staging folder beside it, with its final
// owner and mode, fsynced, then renamed into place: never half-written,
// never readable by others in between.
func (a *Applier) Apply(old, new *Snapshot) (*ApplyResult, error) {
	res := &ApplyResult{}
	a.clearStaging(new)
	paths := sortedKeys(new.Entries)
	// Directories first, parents before children.
	sort.SliceStable(paths, func(i, j int) bool { return strings.Count(paths[i], "/") < strings.Count(paths[j], "/") })
	for _, p := range paths {
		e := new.Entries[p]
		if reason := a.check(p, e); reason != "" {
			res.Refused = append(res.Refused, Refusal{Path: p, Reason: reason})
			continue
		}
		uid, gid, err := ids(e)
		if err != nil {
			return res, fmt.Errorf("%s: %w", p, err)
		}
		mode, err := strconv.ParseUint(e.Mode, 8, 32)
		if err != nil || mode > 0o777 {
			return res, fmt.Errorf("%s: bad mode %q", p, e.Mode)
		}
		oe, hadOld := old.Entries[p]
		same := hadOld && oe == e && old.Blobs[p] == new.Blobs[p]
		switch e.Type {
		case TypeDir:
			d := a.disk(p)
			fi, err := os.Lstat(d)
			if err == nil && !fi.IsDir() {
				if err := os.Remove(d); err != nil {
					return res, err
				}
				err = os.ErrNotExist
			}
			if err != nil {
				if err := os.Mkdir(d, os.FileMode(mode)); err != nil {
					return res, err
				}
				res.Written = append(res.Written, p)
			}
			if err := os.Chown(d, uid, gid); err != nil {
				return res, err
			}
			if err := os.Chmod(d, os.FileMode(mode)); err != nil {
				return res, err
			}
			if err := writeXattrs(d, e.Xattrs); err != nil {
				return res, fmt.Errorf("%s: extended attributes: %w", p, err)
			}
		case TypeSymlink:
			d := a.disk(p)
			if t, err := os.Readlink(d); err == nil && t == e.Target {
				continue
			}
			if err := a.stageSymlink(d, e.Target, uid, gid); err != nil {
				return res, fmt.Errorf("%s: %w", p, err)
			}
			res.Written = append(res.Written, p)
		case TypeFile:
			h := new.Blobs[p]
			d := a.disk(p)
			data, err := a.content(p, e, h)
			if err != nil {
				res.Refused = append(res.Refused, Refusal{Path: p, Reason: err.Error()})
				continue
			}
			cur, curErr := os.ReadFile(d)
			if curErr == nil && bytes.Equal(cur, data) && statMatches(d, uid, gid, mode) && readXattrs(d) == e.Xattrs {
				continue
			}
			if same && curErr == nil {
				res.Drift = append(res.Drift, p)
			}
			// A private key is expected in a file the primary encrypted; a
			// program never is.
			if reason, secret := a.Policy.checkContent(p, data); reason != "" && !(secret && e.Encrypted) {
				res.Refused = append(res.Refused, Refusal{Path: p, Reason: reason})
				continue
			}
			if err := a.stageFile(d, data, os.FileMode(mode), uid, gid, e.Xattrs); err != nil {
				return res, fmt.Errorf("%s: %w", p, err)
			}
			res.Written = append(res.Written, p)
		default:
			res.Refused = append(res.Refused, Refusal{Path: p, Reason: "unknown type " + e.Type})
		}
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
		d := a.disk(p)
		var err error
		if old.Entries[p].Type == TypeDir {
			err = os.Remove(d) // only if empty: never a file the secondary made
		} else {
			err = os.Remove(d)
		}
		if err == nil {
			res.Removed = append(res.Removed, p)
		}
	}
	return res, nil
}

// clearStaging removes staging folders an interrupted apply (a kill, a
// power loss) left in the snapshot's directories.
func (a *Applier) clearStaging(s *Snapshot) {
	dirs := map[string]bool{}
	for p, e := range s.Entries {
		dirs[filepath.Dir(p)] = true
		if e.Type == TypeDir {
			dirs[p] = true
		}
	}
	for d := range dirs {
		left, _ := filepath.Glob(filepath.Join(a.disk(d), StagePrefix+"*"))
		for _, l := range left {
			os.RemoveAll(l)
		}
	}
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
// primary says: paths outside the tracked roots, setuid, specials.
func (a *Applier) check(p string, e Entry) string {
	if p != filepath.Clean(p) || strings.Contains(p, "/../") || !filepath.IsAbs(p) {
		return "path is not clean"
	}
	if !a.Policy.inRoots(p) {
		return "outside the tracked paths of this node"
	}
	for _, g := range identityPaths {
		if ok, _ := filepath.Match(g, p); ok {
			return "node identity (never shared)"
		}
	}
	m, err := strconv.ParseUint(e.Mode, 8, 32)
	if err != nil || m > 0o777 {
		return "mode " + e.Mode + " (only permission bits are allowed)"
	}
	if e.Type == TypeFile && m&0o111 != 0 && !a.Policy.AllowExec[p] {
		return "executable and declared by no module"
	}
	if e.Type == TypeSymlink {
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

func statMatches(p string, uid, gid int, mode uint64) bool {
	fi, err := os.Lstat(p)
	if err != nil {
		return false
	}
	return fileOwner(fi) == [2]int{uid, gid} && uint64(fi.Mode().Perm()) == mode && fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) == 0
}

// stagingDir makes a 0700 folder beside target, on the same file system.
func stagingDir(target string) (string, error) {
	return os.MkdirTemp(filepath.Dir(target), StagePrefix)
}

func (a *Applier) stageFile(target string, data []byte, mode os.FileMode, uid, gid int, xattrs string) error {
	dir, err := stagingDir(target)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "f")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bytes.NewReader(data)); err != nil {
		f.Close()
		return err
	}
	if err := f.Chown(uid, gid); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := writeXattrs(tmp, xattrs); err != nil {
		f.Close()
		return fmt.Errorf("extended attributes: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("a directory stands where the file goes: %w", err)
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	return syncDir(filepath.Dir(target))
}

func (a *Applier) stageSymlink(target, to string, uid, gid int) error {
	dir, err := stagingDir(target)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "l")
	if err := os.Symlink(to, tmp); err != nil {
		return err
	}
	os.Lchown(tmp, uid, gid)
	if err := os.Rename(tmp, target); err != nil {
		return err
	}
	return syncDir(filepath.Dir(target))
}

func syncDir(d string) error {
	f, err := os.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
