package cfgsync

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/sentryha/sentry/synchronizer"
)

// History reads this node's configuration repository for `sentry config
// log/show/diff`: the primary's repository, or the secondary's mirror of
// it. It opens the repository on each call, read-only, so it needs no lock
// and works whatever state the sync is in.
type History struct {
	Dir string // the repository (state folder's config.git)
}

// LogEntry is one commit as `sentry config log` prints it.
type LogEntry struct {
	Commit  string    `json:"commit"`
	Time    time.Time `json:"time"`
	Author  string    `json:"author"`
	Subject string    `json:"subject"`
	Message string    `json:"message"`
}

// ShowResult is a tracked file as it was in a commit. An overlay file
// (OverlayDir/NODE/PATH) says which node it applies to and which path it
// replaces there; a common file lists the nodes that get their own version
// of it instead.
type ShowResult struct {
	Commit  string `json:"commit"`
	Path    string `json:"path"`
	Content string `json:"content"`
	// Node: the content is that node's own version (an overlay file, or
	// the path as that node gets it, asked with node=).
	Node string `json:"node,omitempty"`
	// Overlay is the overlay file the content comes from; AppliesTo is the
	// path it replaces on Node.
	Overlay   string `json:"overlay,omitempty"`
	AppliesTo string `json:"applies_to,omitempty"`
	// Overlays: the nodes that get their own version of Path instead of
	// this content, and their overlay files.
	Overlays []Overlay `json:"overlays,omitempty"`
}

// Overlay is one node's own version of a path.
type Overlay struct {
	Node string `json:"node"`
	File string `json:"file"` // its path under OverlayDir
}

// DiffResult is what a commit changed (config diff).
type DiffResult struct {
	Commit  string     `json:"commit"`
	Message string     `json:"message"`
	Files   []DiffFile `json:"files"`
	Patch   string     `json:"patch"` // the unified diff
}

// DiffFile is one file a commit changed, by its path in the repository
// ("" for a file added or removed). A per-node file (nodes/NODE/files/PATH)
// names its node and the path it replaces there.
type DiffFile struct {
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	Node      string `json:"node,omitempty"`
	AppliesTo string `json:"applies_to,omitempty"`
}

// open opens the repository and says which branch holds its head: the
// primary commits to main; the secondary mirrors it.
func (h *History) open() (*git.Repository, plumbing.ReferenceName, error) {
	r, err := git.PlainOpen(h.Dir)
	if err != nil {
		return nil, "", fmt.Errorf("configuration repository %s: %w", h.Dir, err)
	}
	if _, err := r.Storer.Reference(synchronizer.Branch); err == nil {
		return r, synchronizer.Branch, nil
	}
	return r, synchronizer.RefPrimary, nil
}

func resolve(r *git.Repository, head plumbing.ReferenceName, rev string) (*object.Commit, error) {
	if rev == "" || rev == "HEAD" {
		ref, err := r.Storer.Reference(head)
		if err != nil {
			return nil, fmt.Errorf("no commit yet")
		}
		return r.CommitObject(ref.Hash())
	}
	h, err := r.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	return r.CommitObject(*h)
}

// Log lists at most n commits, newest first, from rev ("": the head).
func (h *History) Log(rev string, n int) ([]LogEntry, error) {
	r, head, err := h.open()
	if err != nil {
		return nil, err
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return nil, err
	}
	out := []LogEntry{}
	err = object.NewCommitPreorderIter(c, nil, nil).ForEach(func(c *object.Commit) error {
		if len(out) >= n {
			return io.EOF
		}
		subj, _, _ := strings.Cut(c.Message, "\n")
		out = append(out, LogEntry{Commit: c.Hash.String(), Time: c.Committer.When, Author: c.Author.Name, Subject: subj, Message: c.Message})
		return nil
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// overlayOf splits a path under OverlayDir into its node and the path it
// replaces there.
func overlayOf(p string) (node, rel string, ok bool) {
	rest, found := strings.CutPrefix(p, synchronizer.OverlayDir+"/")
	if !found {
		return "", "", false
	}
	node, rel, _ = strings.Cut(rest, "/")
	if node == "" || rel == "" {
		return "", "", false
	}
	return node, "/" + rel, true
}

// Show is the tracked file p (absolute) as it was in rev. With node, it is
// p as that node gets it: its overlay when it has one, else the common
// file.
func (h *History) Show(rev, p, node string) (*ShowResult, error) {
	r, head, err := h.open()
	if err != nil {
		return nil, err
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return nil, err
	}
	s, err := synchronizer.ReadSnapshot(r.Storer, c.Hash)
	if err != nil {
		return nil, err
	}
	out := &ShowResult{Commit: c.Hash.String(), Path: p}
	from := p
	if node != "" {
		if ov := synchronizer.OverlayDir + "/" + node + p; s.Blobs[ov] != (plumbing.Hash{}) {
			from = ov
		}
		out.Node = node
	}
	if n, rel, ok := overlayOf(from); ok {
		out.Node, out.Overlay, out.AppliesTo = n, from, rel
	} else {
		for q := range s.Blobs {
			if n, rel, ok := overlayOf(q); ok && rel == p && (node == "" || n == node) {
				out.Overlays = append(out.Overlays, Overlay{Node: n, File: q})
			}
		}
		sort.Slice(out.Overlays, func(i, j int) bool { return out.Overlays[i].Node < out.Overlays[j].Node })
	}
	// Any file of the commit's files tree, as `git show` would (a
	// symlink's is its target).
	bh, ok := s.Blobs[from]
	if !ok {
		return nil, fmt.Errorf("%s is not a tracked file in %s", p, short(c.Hash.String()))
	}
	b, err := r.BlobObject(bh)
	if err != nil {
		return nil, err
	}
	rd, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	out.Content = string(data)
	return out, nil
}

// Diff is what rev ("": the head) changed against its first parent.
func (h *History) Diff(rev string) (*DiffResult, error) {
	r, head, err := h.open()
	if err != nil {
		return nil, err
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return nil, err
	}
	var patch *object.Patch
	if c.NumParents() == 0 {
		t, err := c.Tree()
		if err != nil {
			return nil, err
		}
		changes, err := object.DiffTree(&object.Tree{}, t)
		if err != nil {
			return nil, err
		}
		if patch, err = changes.Patch(); err != nil {
			return nil, err
		}
	} else {
		parent, err := c.Parent(0)
		if err != nil {
			return nil, err
		}
		if patch, err = parent.Patch(c); err != nil {
			return nil, err
		}
	}
	var text strings.Builder
	if err := patch.Encode(&text); err != nil {
		return nil, err
	}
	out := &DiffResult{Commit: c.Hash.String(), Message: c.Message, Files: []DiffFile{}, Patch: text.String()}
	for _, fp := range patch.FilePatches() {
		from, to := fp.Files()
		var f DiffFile
		if from != nil {
			f.From = from.Path()
		}
		if to != nil {
			f.To = to.Path()
		}
		name := f.To
		if name == "" {
			name = f.From
		}
		f.Node, f.AppliesTo = repoOverlay(name)
		out.Files = append(out.Files, f)
	}
	return out, nil
}

// repoOverlay names the node and the path of a per-node file by its path
// in the repository (nodes/NODE/files/PATH); "" for any other file.
func repoOverlay(name string) (node, path string) {
	rest, ok := strings.CutPrefix(name, "nodes/")
	if !ok {
		return "", ""
	}
	node, rel, _ := strings.Cut(rest, "/")
	if p, ok := strings.CutPrefix(rel, "files/"); ok && node != "" {
		return node, "/" + p
	}
	return "", ""
}

// NodeDiffs is what differs by design between the nodes in rev: every
// overlay file, with its diff against the common file. Commit is the
// commit rev named.
func (h *History) NodeDiffs(rev string) (commit string, ds []synchronizer.NodeDiff, err error) {
	r, head, err := h.open()
	if err != nil {
		return "", nil, err
	}
	c, err := resolve(r, head, rev)
	if err != nil {
		return "", nil, err
	}
	s, err := synchronizer.ReadSnapshot(r.Storer, c.Hash)
	if err != nil {
		return "", nil, err
	}
	ds, err = synchronizer.NodeDiffs(r.Storer, s)
	if ds == nil {
		ds = []synchronizer.NodeDiff{}
	}
	return c.Hash.String(), ds, err
}

// NodeDiffsResult is the answer of GET /v1/config/diff?nodes=1.
type NodeDiffsResult struct {
	Commit string                  `json:"commit"`
	Nodes  []synchronizer.NodeDiff `json:"nodes"`
}

// Routes mounts the local API's history endpoints:
//
//	GET /v1/config/log?n=&rev=
//	GET /v1/config/show?rev=&path=&node=
//	GET /v1/config/diff?rev=&nodes=
func (h *History) Routes(mux *http.ServeMux, reply func(http.ResponseWriter, any, error)) {
	mux.HandleFunc("GET /v1/config/log", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		if n <= 0 {
			n = 20
		}
		res, err := h.Log(q.Get("rev"), n)
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/config/show", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		res, err := h.Show(q.Get("rev"), q.Get("path"), q.Get("node"))
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/config/diff", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if b, _ := strconv.ParseBool(q.Get("nodes")); b {
			c, ds, err := h.NodeDiffs(q.Get("rev"))
			reply(w, &NodeDiffsResult{Commit: c, Nodes: ds}, err)
			return
		}
		res, err := h.Diff(q.Get("rev"))
		reply(w, res, err)
	})
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
