package synchronizer

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/objfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// DamageError names an object that a commit needs and the repository
// cannot give: missing (a power loss took it before its ref), or present
// and damaged (truncated, zeroed, not what its name says).
type DamageError struct {
	Commit  plumbing.Hash // the commit that needs it
	Object  plumbing.Hash
	Kind    string // commit, tree, blob
	Path    string // where in the commit's tree ("" for the commit and its root tree)
	Missing bool
	Err     error // what reading it said
}

func (e *DamageError) Error() string {
	what := e.Kind + " " + e.Object.String()
	if e.Path != "" {
		what += " (" + e.Path + ")"
	}
	state := "is damaged: " + e.Err.Error()
	if e.Missing {
		state = "is missing"
	}
	if e.Commit == e.Object {
		return fmt.Sprintf("commit %s %s", e.Commit, state)
	}
	return fmt.Sprintf("commit %s needs %s, which %s", short(e.Commit), what, state)
}

func (e *DamageError) Unwrap() error { return e.Err }

// checker reads every object reachable from the commits it is given, each
// once, through a storage without a cache (what the disk holds), and
// checks that each is there, readable, and hashes to its name: git fsck's
// connectivity and hash checks, for what Sentry's refs need.
type checker struct {
	st      storer.EncodedObjectStorer
	fs      *gitFS
	hist    map[plumbing.Hash]error // a commit and its whole history
	own     map[plumbing.Hash]error // a commit and its tree
	objs    map[plumbing.Hash]error // trees and blobs
	damaged map[plumbing.Hash]bool  // present but unreadable: to be removed
	bad     map[plumbing.Hash]bool  // missing or damaged
	parents map[plumbing.Hash][]plumbing.Hash
	when    map[plumbing.Hash]int64
}

func newChecker(g *gitFS) *checker {
	return &checker{st: g.storage(cache.NewObjectLRU(0)), fs: g, hist: map[plumbing.Hash]error{}, own: map[plumbing.Hash]error{},
		objs: map[plumbing.Hash]error{}, damaged: map[plumbing.Hash]bool{}, bad: map[plumbing.Hash]bool{},
		parents: map[plumbing.Hash][]plumbing.Hash{}, when: map[plumbing.Hash]int64{}}
}

// read returns the object h, checked against its name.
func (c *checker) read(h plumbing.Hash, want plumbing.ObjectType) (plumbing.EncodedObject, error) {
	o, err := c.st.EncodedObject(plumbing.AnyObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		c.bad[h] = true
		return nil, &DamageError{Object: h, Kind: want.String(), Missing: true, Err: err}
	}
	if err == nil {
		var rd io.ReadCloser
		if rd, err = o.Reader(); err == nil {
			hs := plumbing.NewHasher(o.Type(), o.Size())
			var n int64
			n, err = io.Copy(hs, rd)
			rd.Close()
			if err == nil && (n != o.Size() || hs.Sum() != h) {
				err = fmt.Errorf("its content hashes to %s", hs.Sum())
			}
		}
	}
	if err != nil {
		c.bad[h], c.damaged[h] = true, true
		return nil, &DamageError{Object: h, Kind: want.String(), Err: err}
	}
	if want != plumbing.AnyObject && o.Type() != want {
		c.bad[h] = true
		return nil, &DamageError{Object: h, Kind: want.String(), Err: fmt.Errorf("it is a %s", o.Type())}
	}
	return o, nil
}

// tree checks a tree and everything below it.
func (c *checker) tree(h plumbing.Hash, at string) error {
	if err, ok := c.objs[h]; ok {
		return err
	}
	err := func() error {
		o, err := c.read(h, plumbing.TreeObject)
		if err != nil {
			return err
		}
		t := &object.Tree{}
		if err := t.Decode(o); err != nil {
			c.bad[h] = true
			return &DamageError{Object: h, Kind: "tree", Err: err}
		}
		for _, e := range t.Entries {
			p := path.Join(at, e.Name)
			var err error
			switch {
			case e.Mode == filemode.Dir:
				err = c.tree(e.Hash, p)
			case e.Mode == filemode.Submodule:
				continue
			default:
				err = c.blob(e.Hash)
			}
			if err != nil {
				var d *DamageError
				if errors.As(err, &d) && d.Path == "" {
					d.Path = p
				}
				return err
			}
		}
		return nil
	}()
	c.objs[h] = err
	return err
}

func (c *checker) blob(h plumbing.Hash) error {
	if err, ok := c.objs[h]; ok {
		return err
	}
	_, err := c.read(h, plumbing.BlobObject)
	c.objs[h] = err
	return err
}

// commit checks one commit and its tree (not its parents).
func (c *checker) commit(h plumbing.Hash) error {
	if err, ok := c.own[h]; ok {
		return err
	}
	err := func() error {
		o, err := c.read(h, plumbing.CommitObject)
		if err != nil {
			return err
		}
		cm := &object.Commit{}
		if err := cm.Decode(o); err != nil {
			c.bad[h] = true
			return &DamageError{Object: h, Kind: "commit", Err: err}
		}
		c.parents[h], c.when[h] = cm.ParentHashes, cm.Committer.When.Unix()
		return c.tree(cm.TreeHash, "")
	}()
	var d *DamageError
	if errors.As(err, &d) {
		// A copy: the same tree or blob may be reported for other commits.
		dd := *d
		dd.Commit = h
		err = &dd
	}
	c.own[h] = err
	return err
}

// history checks a commit and every commit before it.
func (c *checker) history(h plumbing.Hash) error {
	type frame struct {
		h    plumbing.Hash
		next int
	}
	enter := func(h plumbing.Hash) *frame {
		if _, ok := c.hist[h]; ok {
			return nil
		}
		if err := c.commit(h); err != nil {
			c.hist[h] = err
			return nil
		}
		return &frame{h: h}
	}
	var stack []*frame
	if f := enter(h); f != nil {
		stack = append(stack, f)
	}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		if ps := c.parents[f.h]; f.next < len(ps) {
			f.next++
			if g := enter(ps[f.next-1]); g != nil {
				stack = append(stack, g)
			}
			continue
		}
		stack = stack[:len(stack)-1]
		var err error
		for _, p := range c.parents[f.h] {
			if err = c.hist[p]; err != nil {
				break
			}
		}
		c.hist[f.h] = err
	}
	return c.hist[h]
}

// scanLoose reads every loose object on disk, reachable or not, as git
// fsck does: a damaged one that no ref needs today would otherwise be
// taken as present by the next commit or fetch that needs it. It returns
// how many it found damaged.
func (c *checker) scanLoose() int {
	n := 0
	for _, h := range c.looseObjects() {
		if c.damaged[h] {
			continue
		}
		if _, err := c.read(h, plumbing.AnyObject); err != nil && c.damaged[h] {
			n++
		}
	}
	return n
}

// lastGood is the newest commit whose whole history is intact: the first
// on head's first-parent line; when that line breaks at a commit that is
// gone, the newest such commit among the loose objects (zero if none).
func (c *checker) lastGood(head plumbing.Hash) plumbing.Hash {
	for h := head; !h.IsZero(); {
		if c.history(h) == nil {
			return h
		}
		ps, known := c.parents[h]
		if !known || len(ps) == 0 {
			break
		}
		h = ps[0]
	}
	var best plumbing.Hash
	for _, h := range c.looseObjects() {
		if t, err := c.looseType(h); err != nil || t != plumbing.CommitObject {
			continue
		}
		if c.history(h) == nil && (best.IsZero() || c.when[h] > c.when[best] || c.when[h] == c.when[best] && h.String() > best.String()) {
			best = h
		}
	}
	return best
}

// forget empties the repository's object cache.
func (g *gitFS) forget() {
	if g.cache != nil {
		g.cache.Clear()
	}
}

func looseName(h plumbing.Hash) string {
	s := h.String()
	return "objects/" + s[:2] + "/" + s[2:]
}

// looseObjects lists the loose objects on disk.
func (c *checker) looseObjects() []plumbing.Hash {
	var out []plumbing.Hash
	dirs, _ := c.fs.ReadDir("objects")
	for _, d := range dirs {
		if !d.IsDir() || len(d.Name()) != 2 {
			continue
		}
		files, _ := c.fs.ReadDir("objects/" + d.Name())
		for _, f := range files {
			if hex := d.Name() + f.Name(); len(hex) == 40 && plumbing.IsHash(hex) {
				out = append(out, plumbing.NewHash(hex))
			}
		}
	}
	return out
}

// looseType reads only a loose object's header.
func (c *checker) looseType(h plumbing.Hash) (plumbing.ObjectType, error) {
	f, err := c.fs.Open(looseName(h))
	if err != nil {
		return plumbing.InvalidObject, err
	}
	defer f.Close()
	r, err := objfile.NewReader(f)
	if err != nil {
		return plumbing.InvalidObject, err
	}
	defer r.Close()
	t, _, err := r.Header()
	return t, err
}

// removeDamaged removes the damaged loose object files (a fetch or a
// commit writes them again: go-git takes an object file that is there as
// good). It returns how many it removed, and the damaged objects it could
// not remove (inside a pack).
func (c *checker) removeDamaged() (int, []plumbing.Hash, error) {
	n := 0
	var kept []plumbing.Hash
	dirs := map[string]bool{}
	for _, h := range sortedHashes(c.damaged) {
		name := looseName(h)
		if _, err := c.fs.Lstat(name); err != nil {
			kept = append(kept, h)
			continue
		}
		if err := c.fs.syncFS.Remove(name); err != nil {
			return n, kept, fmt.Errorf("removing the damaged object %s: %w", h, err)
		}
		n++
		dirs[path.Dir(name)] = true
	}
	for d := range dirs {
		if err := c.fs.syncFS.Fsync(d); err != nil {
			return n, kept, err
		}
	}
	return n, kept, nil
}

func sortedHashes(m map[plumbing.Hash]bool) []plumbing.Hash {
	var out []plumbing.Hash
	for h := range m {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func short(h plumbing.Hash) string { return h.String()[:12] }

// startChecked says whether the check at start ran (Repair).
func (r *Repo) startChecked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checked
}

// Check reads everything the branch's head needs, its whole history
// included, from the disk (not from go-git's cache): each object there,
// readable, and what its name says. It returns a *DamageError naming the
// first object missing or damaged, nil when the repository is whole.
func (r *Repo) Check() error {
	head := r.Head()
	if head.IsZero() {
		return nil
	}
	return newChecker(r.fs).history(head)
}

// Repair makes a repository whose head fails Check whole again, and says
// what it found and did ("" when the repository was whole). The damaged
// object files are removed, the model is read again from the disk, and
// committed ("repaired: ...") on the newest commit whose whole history is
// intact (a new root commit when none is): the commits after it, whose
// objects were lost, are no longer on the branch; the new commit's changes
// are listed against that commit. Primary.Run runs it at start when
// nobody did (and gives the commit to OnCommit, CommitResult.Repaired set),
// and so does a Primary's commit that finds the head damaged; an agent may
// call it before Primary.Run to report it at once.
func (r *Repo) Repair(when time.Time) (string, error) {
	res, err := r.repair(when)
	if res == nil {
		return "", err
	}
	return res.Repaired, err
}

func (r *Repo) repair(when time.Time) (*CommitResult, error) {
	r.mu.Lock()
	r.checked = true
	r.mu.Unlock()
	tidied := r.fs.takeTidied() // empty object files, removed at open
	head := r.Head()
	if head.IsZero() {
		return nil, nil
	}
	c := newChecker(r.fs)
	damage := c.history(head)
	if damage == nil {
		return nil, nil
	}
	good := c.lastGood(head)
	c.scanLoose()
	removed, kept, err := c.removeDamaged()
	removed += tidied
	if err != nil {
		return nil, fmt.Errorf("config repository %s: repairing: %w", r.Path, err)
	}
	base, _ := ReadSnapshot(c.st, plumbing.ZeroHash)
	if !good.IsZero() {
		if base, err = ReadSnapshot(c.st, good); err != nil {
			return nil, fmt.Errorf("config repository %s: repairing: %w", r.Path, err)
		}
	}
	// Nothing served from go-git's cache; a fresh model read from the
	// disk; secrets unchanged since good keep their ciphertext.
	r.mu.Lock()
	r.fs.forget()
	r.entries, r.refused, r.metas, r.changed = map[string]*Entry{}, map[string]string{}, map[string]bool{}, map[string]string{}
	r.trees = map[string]*treeNode{"": {entries: map[string]object.TreeEntry{}, dirty: true}}
	r.refDirt, r.refReported = false, false
	r.secrets = map[string]Entry{}
	for p, e := range base.Entries {
		if e.Encrypted {
			e.blob = base.Blobs[p]
			r.secrets[p] = e
		}
	}
	r.bad = c.bad
	r.mu.Unlock()
	scanErr := r.ScanAll()

	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { r.bad = nil }()
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
	changed := r.diffAgainst(base)
	var parents []plumbing.Hash
	how := "recommitted from the disk as a new root commit: no commit with a whole history was left"
	if !good.IsZero() {
		parents = []plumbing.Hash{good}
		how = "recommitted from the disk on " + short(good) + ", the newest commit whose history is whole"
	}
	var body strings.Builder
	fmt.Fprintf(&body, "\nFound: %v.\n", damage)
	if removed > 0 {
		fmt.Fprintf(&body, "Removed %d damaged object file(s).\n", removed)
	}
	if len(kept) > 0 {
		fmt.Fprintf(&body, "%d damaged object(s) are inside a pack: written again as loose objects.\n", len(kept))
	}
	if scanErr != nil {
		fmt.Fprintf(&body, "Reading the disk: %v\n", scanErr)
	}
	msg := commitMessage("repaired: the head "+short(head)+" had lost objects; "+how, changed) + body.String()
	res, err := r.writeCommit(msg, when, root, parents, changed)
	if err != nil {
		return nil, fmt.Errorf("config repository %s: repairing: %w", r.Path, err)
	}
	res.Repaired = fmt.Sprintf("config repository: the head %s failed its check (%v); %d damaged object file(s) removed; %s: commit %s, %d path(s) differ from it",
		short(head), damage, removed, how, short(res.Hash), len(changed))
	if err := newChecker(r.fs).history(res.Hash); err != nil {
		return res, fmt.Errorf("config repository %s: still damaged after the repair: %w", r.Path, err)
	}
	return res, nil
}

// diffAgainst lists what the model holds that differs from snapshot s.
func (r *Repo) diffAgainst(s *Snapshot) map[string]string {
	out := map[string]string{}
	for p, e := range r.entries {
		o, ok := s.Entries[p]
		switch {
		case !ok:
			out[p] = "added"
		case o.Type != e.Type || o.Mode != e.Mode || o.Owner != e.Owner || o.Group != e.Group || o.Target != e.Target ||
			o.Encrypted != e.Encrypted || o.Xattrs != e.Xattrs || (e.Type == TypeFile && !e.Encrypted && s.Blobs[p] != e.blob) ||
			(e.Encrypted && o.MAC != e.MAC):
			out[p] = "modified"
		}
	}
	for p := range s.Entries {
		if _, ok := r.entries[p]; !ok {
			out[p] = "removed"
		}
	}
	return out
}

// mirrorFS is the gitFS the mirror is written through (a new one over
// the same folder when it was opened some other way).
func (s *Secondary) mirrorFS() *gitFS {
	if g := gitFSOf(s.Mirror.Storer); g != nil {
		return g
	}
	return newGitFS(newOSSyncFS(s.Path))
}

// dropFetched forgets what was fetched: the next fetch says it has
// nothing (have = zero) and the primary sends every object of its head
// and history.
func (s *Secondary) dropFetched() error {
	if refHash(s.Mirror, RefPrimary).IsZero() {
		return nil
	}
	if err := s.Mirror.Storer.RemoveReference(RefPrimary); err != nil {
		return fmt.Errorf("config mirror: dropping %s: %w", RefPrimary, err)
	}
	return s.mirrorFS().syncFS.Fsync(path.Dir(RefPrimary.String()))
}

// healFetched is Sync's answer to a head it cannot read: when objects are
// missing or damaged (a power loss, or a fetch that trusted objects this
// side had lost), the damaged files are removed and the fetched ref
// dropped, so that the next sync fetches everything again.
func (s *Secondary) healFetched(head plumbing.Hash, readErr error) error {
	c := newChecker(s.mirrorFS())
	damage := c.commit(head)
	if damage == nil {
		return readErr
	}
	c.scanLoose()
	_, _, err := c.removeDamaged()
	if err == nil {
		err = s.dropFetched()
	}
	c.fs.forget()
	if err != nil {
		return fmt.Errorf("%v; repairing the mirror: %w", damage, err)
	}
	return fmt.Errorf("%v: the next sync fetches everything from the primary again", damage)
}

// Check reads what the mirror's refs need (the fetched head and the
// applied commit, with their history) from the disk; a *DamageError names
// the first object missing or damaged, nil when the mirror is whole.
func (s *Secondary) Check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newChecker(s.mirrorFS())
	for _, ref := range []plumbing.ReferenceName{RefPrimary, RefApplied} {
		if h := refHash(s.Mirror, ref); !h.IsZero() {
			if err := c.history(h); err != nil {
				return err
			}
		}
	}
	return nil
}

// Repair makes a mirror that fails Check whole again, and says what it
// found and did ("" when the mirror was whole). The damaged object files
// are removed and the fetched ref is dropped: the next sync asks the
// primary for everything (have = zero), which writes the lost objects
// again, the applied commit's included when the primary still has it (it
// is then not applied again: the files on disk are that commit's, written
// and synced before its ref). When the primary no longer has it (it
// repaired its own history), the next sync applies the primary's head in
// full (Sync, SyncResult.Repaired). The failed commit's ref needs no
// object and is kept. The first Sync of a Secondary runs it when nobody
// did (and says so in SyncResult.Repaired); an agent may call it at start
// to report it at once.
func (s *Secondary) Repair() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repairLocked()
}

func (s *Secondary) repairLocked() (string, error) {
	s.checked = true
	c := newChecker(s.mirrorFS())
	tidied := c.fs.takeTidied() // empty object files, removed at open
	var found []string
	appliedLost := false
	for _, ref := range []plumbing.ReferenceName{RefPrimary, RefApplied} {
		h := refHash(s.Mirror, ref)
		if h.IsZero() {
			continue
		}
		if err := c.history(h); err != nil {
			found = append(found, fmt.Sprintf("%s at %s: %v", ref, short(h), err))
			appliedLost = appliedLost || ref == RefApplied
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	c.scanLoose()
	removed, _, err := c.removeDamaged()
	removed += tidied
	if err == nil {
		err = s.dropFetched()
	}
	if err != nil {
		return "", fmt.Errorf("config mirror %s: repairing: %w", s.Path, err)
	}
	c.fs.forget()
	desc := fmt.Sprintf("config mirror: %s; %d damaged object file(s) removed; %s dropped: the next sync fetches everything from the primary again",
		strings.Join(found, "; "), removed, RefPrimary)
	if appliedLost {
		desc += ", the applied commit's objects with it if the primary still has that commit (if not, the head is applied in full)"
	}
	return desc, nil
}
