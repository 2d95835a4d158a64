package synchronizer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/sentryha/sentry/internal/atomicfile"
)

// Refs of the secondary's mirror repository.
const (
	RefPrimary = plumbing.ReferenceName("refs/remotes/primary/main") // what was fetched
	RefApplied = plumbing.ReferenceName("refs/sentry/applied")       // the last good apply
	RefFailed  = plumbing.ReferenceName("refs/sentry/failed")        // the last commit that failed to apply
)

// DefaultUnits maps tracked roots to the unit reloaded when something under
// them changes, in reload order. Modules (issue 8) will supply these.
var DefaultUnits = []RootUnit{
	{"/etc/nginx", "nginx.service"}, {"/etc/postfix", "postfix.service"}, {"/etc/dovecot", "dovecot.service"},
	{"/etc/postgresql", "postgresql.service"}, {"/etc/mysql", "mariadb.service"}, {"/etc/samba", "smbd.service"},
	{"/etc/ssh", "ssh.service"},
}

// RootUnit ties a tracked root to its unit.
type RootUnit struct{ Root, Unit string }

// Reloader reloads units and says whether they came back.
type Reloader interface {
	Reload(ctx context.Context, units []string) error
}

// Fetcher asks the primary for its head and the objects this side lacks.
// pack is nil when nothing is missing.
type Fetcher func(ctx context.Context, have plumbing.Hash) (head plumbing.Hash, pack io.ReadCloser, err error)

// Secondary keeps a mirror of the primary's repository and applies it.
type Secondary struct {
	Mirror   *git.Repository
	Path     string // the mirror's folder
	Policy   *Policy
	Units    []RootUnit
	Reloader Reloader
	Log      *slog.Logger
	Node     string // this node's name: its overlays replace the common files
	Secrets  *Secrets
	Root     string // "" is /; tests apply into a folder

	mu      sync.Mutex
	checked bool // Repair ran (the first Sync runs it otherwise)
}

// SyncResult is the outcome of one Sync.
type SyncResult struct {
	Head       string       `json:"head"`
	Applied    string       `json:"applied"`
	Changed    bool         `json:"changed"`
	Result     *ApplyResult `json:"result,omitempty"`
	Units      []string     `json:"units,omitempty"`
	Failed     string       `json:"failed,omitempty"` // the commit that failed, when one did
	Error      string       `json:"error,omitempty"`
	RolledBack bool         `json:"rolled_back,omitempty"`
	Transient  bool         `json:"transient,omitempty"` // the failure may clear by itself: worth another try
	PackBytes  int64        `json:"pack_bytes"`          // bytes that crossed the wire
	// Repaired says what this sync did about objects the mirror lost
	// (a power loss): "" when nothing was lost.
	Repaired string `json:"repaired,omitempty"`
}

// MirrorOpen opens or creates the secondary's bare mirror.
// Objects are made durable before a ref names them (see gitFS).
func MirrorOpen(dir string) (*git.Repository, error) {
	return mirrorOpen(dir, newOSSyncFS(dir))
}

func mirrorOpen(dir string, base syncFS) (*git.Repository, error) {
	r, _, err := openGit(base, Branch)
	if err != nil {
		return nil, fmt.Errorf("config mirror %s: %w", dir, err)
	}
	return r, nil
}

func refHash(r *git.Repository, n plumbing.ReferenceName) plumbing.Hash {
	ref, err := r.Storer.Reference(n)
	if err != nil {
		return plumbing.ZeroHash
	}
	return ref.Hash()
}

// Applied returns the last commit applied with success.
func (s *Secondary) Applied() plumbing.Hash { return refHash(s.Mirror, RefApplied) }

// Fetched returns the primary's head as last fetched.
func (s *Secondary) Fetched() plumbing.Hash { return refHash(s.Mirror, RefPrimary) }

// Failed returns the last commit whose apply failed.
func (s *Secondary) Failed() plumbing.Hash { return refHash(s.Mirror, RefFailed) }

// failedReasonFile keeps why the commit under RefFailed failed, so that a
// restarted agent still says why.
const failedReasonFile = "sentry-failed-reason"

// FailedReason returns why Failed() failed, as recorded then ("" when
// nothing failed or nothing was recorded).
func (s *Secondary) FailedReason() string {
	if s.Failed().IsZero() {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(s.Path, failedReasonFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ForgetFailed forgets the failed commit, as when a newer (or the same) one has
// applied: what failed before no longer describes this node.
func (s *Secondary) ForgetFailed() error {
	if s.Failed().IsZero() {
		return nil
	}
	if err := s.Mirror.Storer.RemoveReference(RefFailed); err != nil {
		return fmt.Errorf("config: forgetting the failed commit: %w", err)
	}
	if err := os.Remove(filepath.Join(s.Path, failedReasonFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("config: forgetting the failed commit: %w", err)
	}
	return nil
}

// transientApply tells an apply error that may clear by itself (a full or
// busy disk) from one that will recur with the same commit.
func transientApply(err error) bool {
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EBUSY, syscall.ETXTBSY, syscall.EAGAIN, syscall.EINTR, syscall.EIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return IsTransient(err)
}

// Sync fetches what the primary has and this side lacks, applies it, and
// reloads the affected units. A failed apply or a unit that does not come
// back restores the last good commit, and the result says so.
func (s *Secondary) Sync(ctx context.Context, fetch Fetcher, force bool) (*SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var repaired string
	if !s.checked {
		// The mirror's check at start, unless the agent ran it: objects a
		// power cut took are fetched again by this sync.
		var err error
		if repaired, err = s.repairLocked(); err != nil {
			s.Log.Error("config mirror check", "err", err)
		} else if repaired != "" {
			s.Log.Warn(repaired)
		}
	}
	have := refHash(s.Mirror, RefPrimary)
	head, pack, err := fetch(ctx, have)
	if err != nil {
		return nil, fmt.Errorf("fetch from the primary: %w", err)
	}
	res := &SyncResult{Head: head.String(), Repaired: repaired}
	if pack != nil {
		cr := &CountingReader{R: pack}
		err := ReadPack(s.Mirror.Storer, cr)
		res.PackBytes = cr.N
		if wb, ok := pack.(interface{ WireBytes() int64 }); ok {
			// The rest of the stream, to its end: a gzip trailer, or what a
			// refused pack left; not more (a gzip bomb after the pack).
			io.Copy(io.Discard, io.LimitReader(pack, 1<<20))
			res.PackBytes = wb.WireBytes()
		}
		pack.Close()
		if err != nil {
			return nil, fmt.Errorf("objects from the primary: %w", err)
		}
	}
	if head.IsZero() {
		return res, nil
	}
	if err := writeRef(s.Mirror.Storer, s.Path, RefPrimary, head); err != nil {
		return nil, err
	}
	applied := s.Applied()
	res.Applied = applied.String()
	if head == applied && !force {
		return res, nil
	}
	if head == s.Failed() && !force {
		why := s.FailedReason()
		if why == "" {
			why = "reason not recorded"
		}
		res.Failed, res.Error = head.String(), "this commit failed to apply before ("+why+"); waiting for a newer one (or sync --force)"
		return res, nil
	}
	new, err := ReadSnapshot(s.Mirror.Storer, head)
	if err != nil {
		return nil, s.healFetched(head, err)
	}
	old, err := ReadSnapshot(s.Mirror.Storer, applied)
	oldLost := false
	if err != nil {
		if newChecker(s.mirrorFS()).commit(applied) == nil {
			return nil, err
		}
		// The applied commit's objects were lost (a power loss; Repair
		// said so at start) and the fetch did not bring them back: the
		// primary no longer has that commit (it repaired its own
		// history). The head is applied in full, as by a first sync:
		// nothing is removed, and there is nothing to roll back to.
		old, _ = ReadSnapshot(s.Mirror.Storer, plumbing.ZeroHash)
		oldLost = true
		lost := fmt.Sprintf("the applied commit %s was lost from the mirror and the primary no longer has it: %s applied in full (files only that commit had are not removed)", short(applied), short(head))
		s.Log.Warn("config sync: "+lost, "err", err)
		if res.Repaired != "" {
			lost = res.Repaired + "; " + lost
		}
		res.Repaired = lost
	}
	old, new = old.ForNode(s.Node), new.ForNode(s.Node)
	res.Changed = true
	ap := &Applier{Store: s.Mirror.Storer, Policy: s.Policy, Root: s.Root, Secrets: s.Secrets}
	ar, applyErr := ap.Apply(old, new)
	res.Result = ar
	var units []string
	if ar != nil {
		units = s.Affected(append(append([]string{}, ar.Written...), ar.Removed...))
	}
	res.Units = units
	if applyErr == nil {
		applyErr = s.Reloader.Reload(ctx, units)
	}
	if applyErr == nil {
		res.Applied = head.String()
		if err := writeRef(s.Mirror.Storer, s.Path, RefApplied, head); err != nil {
			return res, err
		}
		return res, s.ForgetFailed()
	}
	// Back to the last good commit.
	res.Failed, res.Error, res.Transient = head.String(), applyErr.Error(), transientApply(applyErr)
	s.Log.Warn("config apply failed: rolling back", "commit", head.String(), "to", applied.String(), "err", applyErr)
	if oldLost {
		// Rolling back to nothing would remove every file of the head.
		res.Error += "; not rolled back: the last applied commit was lost from the mirror"
	} else {
		back, err := ap.Apply(new, old)
		if err == nil {
			err = s.Reloader.Reload(ctx, s.Affected(append(append([]string{}, back.Written...), back.Removed...)))
		}
		res.RolledBack = err == nil
		if err != nil {
			res.Error += "; rolling back failed too: " + err.Error()
		}
	}
	if err := writeRef(s.Mirror.Storer, s.Path, RefFailed, head); err != nil {
		s.Log.Error("config: recording the failed commit", "err", err)
	} else if err := atomicfile.Write(filepath.Join(s.Path, failedReasonFile), []byte(res.Error+"\n"), 0o600); err != nil {
		s.Log.Error("config: recording why the commit failed", "err", err)
	}
	return res, nil
}

// Affected lists the units to reload for the changed paths, in the order
// of s.Units.
func (s *Secondary) Affected(paths []string) []string {
	var out []string
	for _, ru := range s.Units {
		for _, p := range paths {
			p = strings.TrimPrefix(p, s.Root)
			if p == ru.Root || strings.HasPrefix(p, ru.Root+"/") {
				out = append(out, ru.Unit)
				break
			}
		}
	}
	return out
}

// CountingReader counts the bytes read through it.
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}
