package synchronizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// A change of nothing but refused files (a secret, a script) makes no
// commit: the refusal is reported once, and refused.toml is updated with
// the next real commit.
func TestCommitOfOnlyRefusedFilesMakesNoCommit(t *testing.T) {
	root, pol := fixture(t)
	r, err := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	first, err := r.Commit("snapshot", time.Now())
	if err != nil || first == nil {
		t.Fatalf("first commit: %v %v", first, err)
	}
	n := filepath.Join(root, "etc/nginx")
	for name, body := range map[string]string{"db.key": "x", "hook.sh": "#!/bin/sh\necho\n"} {
		os.WriteFile(filepath.Join(n, name), []byte(body), 0o600)
		r.Update(filepath.Join(n, name))
	}
	res, err := r.Commit("edit", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || !res.Hash.IsZero() || len(res.Refused) != 2 {
		t.Fatalf("only refused files changed: got %+v, want a result without a commit listing 2 refusals", res)
	}
	if r.Head() != first.Hash {
		t.Fatalf("head moved to %s: a commit of 0 paths was made", r.Head())
	}
	if again, _ := r.Commit("rescan", time.Now()); again != nil {
		t.Fatalf("the same refusals were reported twice: %+v", again)
	}
	os.WriteFile(filepath.Join(n, "nginx.conf"), []byte("worker_processes 2;\n"), 0o644)
	r.Update(filepath.Join(n, "nginx.conf"))
	c, err := r.Commit("edit", time.Now())
	if err != nil || c == nil || c.Hash.IsZero() || len(c.Changed) != 1 {
		t.Fatalf("a real change: %+v %v", c, err)
	}
	if refused := gitCmd(t, r.Path, "show", "main:refused.toml"); !strings.Contains(refused, "db.key") || !strings.Contains(refused, "hook.sh") {
		t.Errorf("refused.toml after the next commit:\n%s", refused)
	}
	if msg := gitCmd(t, r.Path, "log", "--format=%s", "main"); strings.Contains(msg, ": 0 path(s)") {
		t.Errorf("a commit of 0 paths:\n%s", msg)
	}
}

// reloaderFunc is a Reloader the test steers; what it returns is what the
// secondary must react to.
type reloaderFunc func(units []string) error

func (f reloaderFunc) Reload(_ context.Context, units []string) error { return f(units) }

func packFetcher(r *Repo) Fetcher {
	return func(ctx context.Context, have plumbing.Hash) (plumbing.Hash, io.ReadCloser, error) {
		head := r.Head()
		if head == have {
			return head, nil, nil
		}
		var haves []plumbing.Hash
		if !have.IsZero() {
			haves = append(haves, have)
		}
		var buf bytes.Buffer
		if _, err := WritePack(&buf, r.Git().Storer, head, haves); err != nil {
			return plumbing.ZeroHash, nil, err
		}
		return head, io.NopCloser(&buf), nil
	}
}

// A failed apply is recorded with its reason, which a restarted agent can
// still read; a reload that may clear by itself is marked transient, one
// the service refused is not; a later success forgets the failure.
func TestSecondaryFailureIsRecordedWithItsReasonAndForgotten(t *testing.T) {
	root, pol := fixture(t)
	r, err := OpenRepo(filepath.Join(t.TempDir(), "c.git"), "node-p", pol)
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAll()
	r.Commit("snapshot", time.Now())
	mdir := filepath.Join(t.TempDir(), "m.git")
	m, err := MirrorOpen(mdir)
	if err != nil {
		t.Fatal(err)
	}
	var reloadErr error
	sroot := t.TempDir()
	os.MkdirAll(filepath.Join(sroot, root, "etc/ssh"), 0o755)
	sec := func() *Secondary {
		return &Secondary{Mirror: m, Path: mdir, Policy: pol, Node: "node-s", Root: sroot,
			Units:    []RootUnit{{filepath.Join(root, "etc/nginx"), "nginx.service"}},
			Reloader: reloaderFunc(func([]string) error { err := reloadErr; reloadErr = nil; return err }), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	s := sec()
	ctx := context.Background()
	if res, err := s.Sync(ctx, packFetcher(r), false); err != nil || res.Applied != r.Head().String() {
		t.Fatalf("first sync: %+v %v", res, err)
	}
	edit := func(v int) {
		f := filepath.Join(root, "etc/nginx/nginx.conf")
		os.WriteFile(f, []byte(fmt.Sprintf("worker_processes %d;\n", v)), 0o644)
		r.Update(f)
		if c, err := r.Commit("edit", time.Now()); err != nil || c == nil {
			t.Fatalf("commit: %v %v", c, err)
		}
	}

	edit(2)
	reloadErr = &TransientError{errors.New("nginx.service still reloading 20s after the reload")}
	res, err := s.Sync(ctx, packFetcher(r), false)
	if err != nil || res.Failed != r.Head().String() || !res.Transient || !res.RolledBack {
		t.Fatalf("transient failure: %+v %v", res, err)
	}
	// A new agent (a restart) reads the same failure and its reason.
	s = sec()
	if s.Failed() != r.Head() || !strings.Contains(s.FailedReason(), "still reloading") {
		t.Fatalf("after a restart: failed %s, reason %q", s.Failed(), s.FailedReason())
	}
	res, _ = s.Sync(ctx, packFetcher(r), false)
	if !strings.Contains(res.Error, "failed to apply before (nginx.service still reloading") {
		t.Errorf("the failed commit again, without force: %q", res.Error)
	}
	// The retry (forced) goes through: the failure is forgotten.
	reloadErr = nil
	if res, err := s.Sync(ctx, packFetcher(r), true); err != nil || res.Failed != "" || res.Applied != r.Head().String() {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if !s.Failed().IsZero() || s.FailedReason() != "" {
		t.Errorf("after a good apply: failed %s, reason %q", s.Failed(), s.FailedReason())
	}

	edit(3)
	reloadErr = errors.New("reload of nginx.service: job failed (the service refused its new configuration)")
	res, _ = s.Sync(ctx, packFetcher(r), false)
	if res.Failed == "" || res.Transient {
		t.Errorf("a refused reload: %+v, want failed and not transient", res)
	}
}

// fakeUnit replays a unit's ActiveState, one value a read, the last one
// forever.
type fakeUnit struct{ states []string }

func (f *fakeUnit) ActiveState(context.Context, string) (string, error) {
	s := f.states[0]
	if len(f.states) > 1 {
		f.states = f.states[1:]
	}
	return s, nil
}

func TestJudgeSettled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		states    []string
		wasActive bool
		want      string // "" ok, else a part of the error
		transient bool
	}{
		{"active at once", []string{"active"}, true, "", false},
		{"reloading, then active", []string{"reloading", "reloading", "reloading", "active"}, true, "", false},
		{"activating, then active", []string{"activating", "active"}, true, "", false},
		{"reloading, then failed", []string{"reloading", "failed"}, true, "is failed after the reload", false},
		{"never settles", []string{"reloading"}, true, "still reloading", true},
		{"stopped before, stays stopped", []string{"inactive"}, false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := judgeSettled(context.Background(), &fakeUnit{states: tc.states}, "dovecot.service", tc.wasActive, 300*time.Millisecond)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want %q", err, tc.want)
			case err != nil && IsTransient(err) != tc.transient:
				t.Fatalf("transient %v, want %v (%v)", IsTransient(err), tc.transient, err)
			}
		})
	}
}

// A service's own configuration check runs before its reload: a refusal
// names the unit and the checker's first line; a checker that is not
// installed is skipped.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "doveconf")
	os.WriteFile(bad, []byte("#!/bin/sh\necho \"doveconf: Fatal: Error in configuration file /etc/dovecot/conf.d/99-x.conf line 1: Expecting '{'\" >&2\necho second line >&2\nexit 89\n"), 0o755)
	good := filepath.Join(dir, "nginx")
	os.WriteFile(good, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	checks := map[string][]string{"dovecot.service": {bad, "-n"}, "nginx.service": {good, "-t"}, "ssh.service": {filepath.Join(dir, "missing"), "-t"}}
	ctx := context.Background()
	err := checkConfig(ctx, checks, "dovecot.service")
	if err == nil || IsTransient(err) || !strings.Contains(err.Error(), "dovecot.service refused its new configuration") ||
		!strings.Contains(err.Error(), "99-x.conf line 1: Expecting '{'") || strings.Contains(err.Error(), "second line") {
		t.Errorf("refused: %v", err)
	}
	for _, u := range []string{"nginx.service", "ssh.service", "postgresql.service"} {
		if err := checkConfig(ctx, checks, u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// The debounce: a lone edit waits MinQuiet; a burst widens the window up to
// sync.debounce; a burst that never pauses is committed within 10 x that.
func TestQuietWindow(t *testing.T) {
	max := time.Second
	t0 := time.Now()
	var q quiet
	if w := q.next(t0, max); w != MinQuiet {
		t.Fatalf("a lone edit waits %s, want %s", w, MinQuiet)
	}
	// The events of one edit (sed -i: a temp file, writes, a rename), a
	// few milliseconds apart: the window stays the lone edit's.
	for i := 1; i <= 5; i++ {
		if w := q.next(t0.Add(time.Duration(i)*3*time.Millisecond), max); w != MinQuiet {
			t.Fatalf("event %d of one edit: wait %s, want %s", i, w, MinQuiet)
		}
	}
	// Further edits, each 100 ms after the one before: it widens.
	var got []time.Duration
	for i := 1; i <= 5; i++ {
		got = append(got, q.next(t0.Add(time.Duration(i)*100*time.Millisecond), max))
	}
	want := []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, time.Second, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("a burst's windows %v, want %v", got, want)
		}
	}
	if w := q.next(t0.Add(9500*time.Millisecond), max); w != 500*time.Millisecond {
		t.Errorf("near 10 x debounce into a burst: wait %s, want the 500ms left", w)
	}
	if w := q.next(t0.Add(11*time.Second), max); w != 0 {
		t.Errorf("past 10 x debounce: wait %s, want 0", w)
	}
	var short quiet
	if w := short.next(t0, 50*time.Millisecond); w != 50*time.Millisecond {
		t.Errorf("a debounce under MinQuiet: wait %s", w)
	}
}
