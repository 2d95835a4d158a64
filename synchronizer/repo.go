package synchronizer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Branch is the branch the primary commits to.
const Branch = plumbing.ReferenceName("refs/heads/main")

// MetaName is the per-directory metadata file in the meta/ tree.
const MetaName = "@meta.toml"

// MetaSchemaVersion is the version of the @meta.toml format.
const MetaSchemaVersion = 1

// Meta is one directory's @meta.toml.
type Meta struct {
	SchemaVersion int     `toml:"schema_version"`
	Entries       []Entry `toml:"entry"`
}

type treeNode struct {
	entries map[string]object.TreeEntry
	dirty   bool
}

// Repo is the primary's side: the tracked files' model and the repository.
type Repo struct {
	Path   string
	Node   string // committer name
	policy *Policy

	mu      sync.Mutex
	repo    *git.Repository
	st      storer.Storer
	fs      *gitFS            // what the repository is written through: objects made durable before a ref names them
	entries map[string]*Entry // absolute path -> entry
	refused map[string]string // absolute path -> reason
	trees   map[string]*treeNode
	metas   map[string]bool // directories whose @meta.toml must be rewritten
	refDirt bool
	// refReported: the refusals as they stand were reported by a Commit
	// that made no commit (nothing else changed).
	refReported bool
	changed     map[string]string // path -> "added", "modified", "removed" since the last commit
	secrets     map[string]Entry  // encrypted entries of the head at start
	// bad are objects a repair found missing or damaged: written again
	// even where go-git says it has them (a damaged object inside a pack).
	bad map[plumbing.Hash]bool
	// checked: Repair ran (Primary.Run runs it at start otherwise).
	checked bool
	// staged are the objects made and not yet written: the commit writes
	// them, as one pack when there are many (packwrite.go).
	staged objectStage
}

// OpenRepo opens (or creates) the bare repository at dir.
func OpenRepo(dir, node string, pol *Policy) (*Repo, error) {
	return openRepo(dir, node, pol, newOSSyncFS(dir))
}

// openRepo opens the repository through base (tests record what is done
// to its files).
func openRepo(dir, node string, pol *Policy, base syncFS) (*Repo, error) {
	r, g, err := openGit(base, Branch)
	if err != nil {
		return nil, fmt.Errorf("config repository %s: %w", dir, err)
	}
	return &Repo{Path: dir, Node: node, policy: pol, repo: r, st: r.Storer, fs: g,
		entries: map[string]*Entry{}, refused: map[string]string{},
		trees: map[string]*treeNode{"": {entries: map[string]object.TreeEntry{}, dirty: true}},
		metas: map[string]bool{}, changed: map[string]string{}}, nil
}

// Git returns the underlying repository.
func (r *Repo) Git() *git.Repository { return r.repo }

// Refused returns the paths left out, sorted.
func (r *Repo) Refused() []Refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Refusal
	for _, p := range sortedKeys(r.refused) {
		out = append(out, Refusal{Path: p, Reason: r.refused[p]})
	}
	return out
}

// ScanAll examines every tracked root (the first snapshot, and the
// periodic rescan behind the watcher).
func (r *Repo) ScanAll() error {
	var errs []error
	for _, root := range r.policy.Roots {
		errs = append(errs, r.Update(root))
	}
	return errors.Join(errs...)
}

// Update examines path (a file, or a directory and all below it) and
// brings the model in step with the disk. Nothing is committed yet.
func (r *Repo) Update(p string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p = filepath.Clean(p)
	if !r.policy.inRoots(p) {
		return nil
	}
	return r.update(p)
}

func (r *Repo) update(p string) error {
	if r.policy.excluded(filepath.Base(p)) {
		r.removeTree(p)
		return nil
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		r.removeTree(p)
		delete(r.refused, p)
		r.refDirt, r.refReported = true, false
		return nil
	}
	if err != nil {
		return err
	}
	e, reason, secret := r.policy.classify(p, fi)
	encrypt := secret && r.policy.Secrets != nil
	if encrypt {
		reason = ""
	}
	if reason == "" && e.Type == TypeFile {
		old := r.entries[p]
		if old != nil && old.Type == TypeFile && old.size == e.size && old.mtime == e.mtime && old.ino == e.ino {
			e.blob, e.Encrypted, e.MAC = old.blob, old.Encrypted, old.MAC
		} else {
			data, err := readLimited(p)
			if err != nil {
				reason = "unreadable: " + err.Error()
			} else {
				var isSecret bool
				reason, isSecret = r.policy.checkContent(p, data)
				if isSecret && r.policy.Secrets != nil {
					reason, encrypt = "", true
				}
			}
			if reason == "" && encrypt {
				if err := r.putSecret(p, e, data); err != nil {
					return err
				}
			} else if reason == "" {
				h, err := r.putBlob(data)
				if err != nil {
					return err
				}
				e.blob = h
			}
		}
	}
	if reason != "" && (secret || strings.HasPrefix(reason, "holds a private key")) {
		reason += " (left out: secrets never cross in plaintext; sync.encrypt_secrets sends them encrypted to the cluster key)"
	}
	if reason != "" {
		r.removeTree(p)
		if r.refused[p] != reason {
			r.refused[p] = reason
			r.refDirt, r.refReported = true, false
		}
		return nil
	}
	if _, ok := r.refused[p]; ok {
		delete(r.refused, p)
		r.refDirt, r.refReported = true, false
	}
	old := r.entries[p]
	if old != nil && old.Type != e.Type {
		r.removeTree(p)
		old = nil
	}
	if old == nil || old.Mode != e.Mode || old.Owner != e.Owner || old.Group != e.Group || old.Target != e.Target || old.blob != e.blob || old.Encrypted != e.Encrypted || old.Xattrs != e.Xattrs {
		if old == nil {
			r.changed[p] = "added"
		} else {
			r.changed[p] = "modified"
		}
		r.metas[filepath.Dir(p)] = true
		if e.Type == TypeFile {
			r.setTreeEntry(treeFile(r.policy.overlays(), p), e.blob, filemode.Regular)
		}
	}
	r.entries[p] = e
	if e.Type != TypeDir {
		return nil
	}
	r.metas[p] = true // a tracked directory has a meta file, even empty
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, de := range ents {
		c := filepath.Join(p, de.Name())
		seen[c] = true
		if err := r.update(c); err != nil {
			return err
		}
	}
	for q := range r.entries {
		if filepath.Dir(q) == p && !seen[q] {
			r.removeTree(q)
		}
	}
	for q := range r.refused {
		if filepath.Dir(q) == p && !seen[q] {
			delete(r.refused, q)
			r.refDirt, r.refReported = true, false
		}
	}
	return nil
}

// removeTree drops p and everything below it from the model.
func (r *Repo) removeTree(p string) {
	for q, e := range r.entries {
		if q == p || strings.HasPrefix(q, p+"/") {
			if e.Type == TypeFile {
				r.deleteTreeEntry(treeFile(r.policy.overlays(), q))
			}
			if e.Type == TypeDir {
				r.deleteTreeEntry(treeMeta(r.policy.overlays(), q))
				delete(r.metas, q)
			}
			delete(r.entries, q)
			r.changed[q] = "removed"
			r.metas[filepath.Dir(q)] = true
		}
	}
}

// putSecret stores a secret file encrypted to the cluster key. Encryption
// is randomised, so an unchanged secret (same MAC as in the last commit)
// keeps its ciphertext: no new commit at every start.
func (r *Repo) putSecret(p string, e *Entry, data []byte) error {
	mac := r.policy.Secrets.MAC(data)
	if prev, ok := r.prevSecrets()[p]; ok && prev.MAC == mac && r.has(prev.blob) {
		e.blob, e.Encrypted, e.MAC = prev.blob, true, mac
		return nil
	}
	ct, err := r.policy.Secrets.Encrypt(data)
	if err != nil {
		return fmt.Errorf("encrypt %s: %w", p, err)
	}
	h, err := r.putBlob(ct)
	if err != nil {
		return err
	}
	e.blob, e.Encrypted, e.MAC = h, true, mac
	return nil
}

// prevSecrets are the encrypted entries of the head commit, read once.
func (r *Repo) prevSecrets() map[string]Entry {
	if r.secrets != nil {
		return r.secrets
	}
	r.secrets = map[string]Entry{}
	if head := r.Head(); !head.IsZero() {
		if s, err := ReadSnapshot(r.st, head); err == nil {
			for p, e := range s.Entries {
				if e.Encrypted {
					e.blob = s.Blobs[p]
					r.secrets[p] = e
				}
			}
		}
	}
	return r.secrets
}

// has says whether the repository holds object h (and a repair did not
// find it damaged), or holds it staged for the next commit.
func (r *Repo) has(h plumbing.Hash) bool {
	return r.staged.has[h] || !r.bad[h] && r.st.HasEncodedObject(h) == nil
}

// putBlob stages a blob for the next commit (data is kept: the caller
// does not change it).
func (r *Repo) putBlob(data []byte) ([20]byte, error) {
	h := plumbing.ComputeHash(plumbing.BlobObject, data)
	if r.has(h) {
		return h, nil
	}
	return h, r.stageObject(plumbing.BlobObject, h, data)
}

func (r *Repo) node(dir string) *treeNode {
	n := r.trees[dir]
	if n == nil {
		n = &treeNode{entries: map[string]object.TreeEntry{}}
		r.trees[dir] = n
		if dir != "" {
			parent, name := path.Split(dir)
			parent = strings.TrimSuffix(parent, "/")
			r.node(parent).entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir}
		}
	}
	return n
}

func (r *Repo) markDirty(dir string) {
	for {
		r.node(dir).dirty = true
		if dir == "" {
			return
		}
		parent, _ := path.Split(dir)
		dir = strings.TrimSuffix(parent, "/")
	}
}

func (r *Repo) setTreeEntry(p string, h plumbing.Hash, m filemode.FileMode) {
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	r.node(dir).entries[name] = object.TreeEntry{Name: name, Mode: m, Hash: h}
	r.markDirty(dir)
}

func (r *Repo) deleteTreeEntry(p string) {
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	n := r.trees[dir]
	if n == nil {
		return
	}
	delete(n.entries, name)
	r.markDirty(dir)
	if len(n.entries) == 0 && dir != "" {
		delete(r.trees, dir)
		r.deleteTreeEntry(dir)
	}
}

// writeMetas re-encodes the @meta.toml of every directory marked.
func (r *Repo) writeMetas() error {
	children := map[string][]*Entry{}
	for dir := range r.metas {
		children[dir] = nil
	}
	if len(children) == 0 {
		return nil
	}
	for p, e := range r.entries {
		if d := filepath.Dir(p); r.metas[d] {
			children[d] = append(children[d], e)
		}
	}
	for dir, es := range children {
		mp := treeMeta(r.policy.overlays(), dir)
		_, tracked := r.entries[dir]
		if len(es) == 0 && !tracked {
			r.deleteTreeEntry(mp)
			continue
		}
		sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
		m := Meta{SchemaVersion: MetaSchemaVersion}
		for _, e := range es {
			m.Entries = append(m.Entries, *e)
		}
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(m); err != nil {
			return err
		}
		h, err := r.putBlob(buf.Bytes())
		if err != nil {
			return err
		}
		r.setTreeEntry(mp, h, filemode.Regular)
	}
	r.metas = map[string]bool{}
	return nil
}

func (r *Repo) writeRefused() error {
	if !r.refDirt {
		return nil
	}
	r.refDirt = false
	var list struct {
		Refused []Refusal `toml:"refused"`
	}
	for _, p := range sortedKeys(r.refused) {
		list.Refused = append(list.Refused, Refusal{Path: p, Reason: r.refused[p]})
	}
	if len(list.Refused) == 0 {
		r.deleteTreeEntry("refused.toml")
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString("# Paths under the tracked roots that were left out, and why.\n")
	if err := toml.NewEncoder(&buf).Encode(list); err != nil {
		return err
	}
	h, err := r.putBlob(buf.Bytes())
	if err != nil {
		return err
	}
	r.setTreeEntry("refused.toml", h, filemode.Regular)
	return nil
}

// gitLess orders tree entries as git does: a tree's name sorts as if it
// ended in '/'.
func gitLess(a, b object.TreeEntry) bool {
	an, bn := a.Name, b.Name
	if a.Mode == filemode.Dir {
		an += "/"
	}
	if b.Mode == filemode.Dir {
		bn += "/"
	}
	return an < bn
}

// writeTrees stores every dirty tree, deepest first, and returns the root.
func (r *Repo) writeTrees() (plumbing.Hash, error) {
	var dirty []string
	for d, n := range r.trees {
		if n.dirty {
			dirty = append(dirty, d)
		}
	}
	sort.Slice(dirty, func(i, j int) bool {
		ci, cj := strings.Count(dirty[i], "/"), strings.Count(dirty[j], "/")
		if dirty[i] == "" {
			return false
		}
		if dirty[j] == "" {
			return true
		}
		return ci > cj
	})
	var root plumbing.Hash
	for _, d := range dirty {
		n := r.trees[d]
		t := &object.Tree{}
		for _, name := range sortedKeys(n.entries) {
			t.Entries = append(t.Entries, n.entries[name])
		}
		sort.Slice(t.Entries, func(i, j int) bool { return gitLess(t.Entries[i], t.Entries[j]) })
		obj := r.st.NewEncodedObject()
		if err := t.Encode(obj); err != nil {
			return root, err
		}
		h, err := r.stageEncoded(obj)
		if err != nil {
			return root, err
		}
		n.dirty = false
		if d == "" {
			root = h
			continue
		}
		parent, name := path.Split(d)
		parent = strings.TrimSuffix(parent, "/")
		pe := r.node(parent).entries[name]
		pe.Hash, pe.Mode, pe.Name = h, filemode.Dir, name
		r.node(parent).entries[name] = pe
	}
	if root.IsZero() {
		h, err := r.rootHash()
		return h, err
	}
	return root, nil
}

// rootHash computes the root tree without storing (nothing dirty).
func (r *Repo) rootHash() (plumbing.Hash, error) {
	r.trees[""].dirty = true
	return r.writeTrees()
}

// Head returns the current commit of the branch (zero if none).
func (r *Repo) Head() plumbing.Hash {
	ref, err := r.st.Reference(Branch)
	if err != nil {
		return plumbing.ZeroHash
	}
	return ref.Hash()
}

// CommitResult says what a commit recorded.
type CommitResult struct {
	Hash    plumbing.Hash // zero when no commit was made: only Refused changed
	Changed map[string]string
	Refused []Refusal
	// Repaired says what a repair found and did (Repair; a Primary's
	// commit that found the head damaged): "" for an ordinary commit.
	Repaired string
}

// Commit records the model as a new commit if anything changed. why is the
// first line of the message (the files changed are listed after it).
func (r *Repo) Commit(why string, when time.Time) (*CommitResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.changed) == 0 && !r.Head().IsZero() {
		// Nothing that crosses changed: no commit. A change of what was
		// left out is reported (a result without a hash) and written into
		// refused.toml with the next real commit.
		if !r.refDirt || r.refReported {
			return nil, nil
		}
		r.refReported = true
		res := &CommitResult{}
		for _, p := range sortedKeys(r.refused) {
			res.Refused = append(res.Refused, Refusal{Path: p, Reason: r.refused[p]})
		}
		return res, nil
	}
	r.refReported = false
	if err := r.writeMetas(); err != nil {
		return nil, err
	}
	if err := r.writeRefused(); err != nil {
		return nil, err
	}
	root, err := r.writeTrees()
	if err != nil {
		return nil, err
	}
	head := r.Head()
	var parents []plumbing.Hash
	if !head.IsZero() {
		hc, err := object.GetCommit(r.st, head)
		if err != nil {
			// A power loss took the head's objects (or a disk damaged
			// them): Repair makes the repository whole again.
			return nil, &DamageError{Commit: head, Object: head, Kind: "commit", Missing: errors.Is(err, plumbing.ErrObjectNotFound),
				Err: fmt.Errorf("config repository head %s: %w", head, err)}
		}
		if hc.TreeHash == root {
			r.changed = map[string]string{}
			return nil, nil
		}
		parents = []plumbing.Hash{head}
	}
	return r.writeCommit(commitMessage(why, r.changed), when, root, parents, r.changed)
}

// writeCommit writes the staged objects (one pack when there are many)
// and the commit (loose), and moves the branch to it after its objects are
// durable.
func (r *Repo) writeCommit(msg string, when time.Time, root plumbing.Hash, parents []plumbing.Hash, changed map[string]string) (*CommitResult, error) {
	if err := r.writeStaged(); err != nil {
		return nil, err
	}
	sig := object.Signature{Name: "sentry on " + r.Node, Email: "sentry@" + r.Node, When: when}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: root, ParentHashes: parents}
	obj := r.st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return nil, err
	}
	h, err := r.st.SetEncodedObject(obj)
	if err != nil {
		return nil, err
	}
	if err := r.fs.writeRef(Branch, h); err != nil {
		return nil, err
	}
	res := &CommitResult{Hash: h, Changed: changed}
	for _, p := range sortedKeys(r.refused) {
		res.Refused = append(res.Refused, Refusal{Path: p, Reason: r.refused[p]})
	}
	r.changed = map[string]string{}
	return res, nil
}

func commitMessage(why string, changed map[string]string) string {
	var b strings.Builder
	keys := sortedKeys(changed)
	fmt.Fprintf(&b, "%s: %d path(s)", why, len(keys))
	if len(keys) > 0 {
		b.WriteString(": ")
		for i, k := range keys {
			if i == 3 {
				fmt.Fprintf(&b, " and %d more", len(keys)-3)
				break
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
		}
	}
	b.WriteString("\n\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%-8s %s\n", changed[k], k)
	}
	return b.String()
}
