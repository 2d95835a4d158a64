package reports

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/report"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/verifier"
)

// These tests run the real restic (the sentry package recommends it; make
// deps installs it) on repositories in the test's temporary folder.

// resticRepo makes a repository with one snapshot of a folder of 30 small
// files and one larger one, and returns the backup probe that names it.
func resticRepo(t *testing.T) (verifier.Spec, func(args ...string) *exec.Cmd) {
	t.Helper()
	if _, err := exec.LookPath("restic"); err != nil {
		t.Fatalf("this test needs restic (apt-get install restic, or make deps): %v", err)
	}
	dir := t.TempDir()
	repo, pw, data := filepath.Join(dir, "repo"), filepath.Join(dir, "pw"), filepath.Join(dir, "data")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		body := strings.Repeat(fmt.Sprintf("file %d of the office share\n", i), 50+i*7)
		if err := os.WriteFile(filepath.Join(data, "sub", fmt.Sprintf("doc-%02d.txt", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	restic := func(args ...string) *exec.Cmd {
		c := exec.Command("restic", append([]string{"--password-file", pw, "--no-cache"}, args...)...)
		c.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo)
		return c
	}
	for _, args := range [][]string{{"init"}, {"backup", data}} {
		if out, err := restic(args...).CombinedOutput(); err != nil {
			t.Fatalf("restic %v: %v\n%s", args, err, out)
		}
	}
	return verifier.Spec{Name: "backup", Kind: "backup", Params: &verifier.BackupParams{ResticRepo: repo, ResticPasswordFile: pw}}, restic
}

// restoreFixture is a primary whose events go into its store, as the
// agent's do.
func restoreFixture(t *testing.T, specs []verifier.Spec, opts ...Option) (*Reports, *fixture, chan struct{}) {
	t.Helper()
	f := newFixture(t, "primary", now)
	done := make(chan struct{})
	var mu sync.Mutex
	r := New(Deps{Conf: func() *config.Config { return &f.conf }, Store: func() *store.Store { return f.st },
		State: func() api.State { return f.state }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Event: func(kind, node, msg string, fields map[string]string) {
			mu.Lock()
			defer mu.Unlock()
			if _, err := f.st.AppendEvent(store.Event{Time: time.Now(), Kind: kind, Node: node, Message: msg, Fields: fields}); err != nil {
				t.Error(err)
			}
		},
		Backups: func() []verifier.Spec { return specs }, Done: done},
		append([]Option{WithClock(func() time.Time { return now }), WithRestore(t.TempDir(), time.Hour)}, opts...)...)
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			close(done)
		}
	})
	return r, f, done
}

func restoreEvents(t *testing.T, st *store.Store) []report.RestoreRun {
	t.Helper()
	evs, err := st.History().Events(report.EventRestoreTest)
	if err != nil {
		t.Fatal(err)
	}
	var runs []report.RestoreRun
	for _, e := range evs {
		run, err := report.RestoreOf(e)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

func TestRestoreTestGood(t *testing.T) {
	spec, _ := resticRepo(t)
	tmp := t.TempDir()
	r, f, _ := restoreFixture(t, []verifier.Spec{spec, {Name: "files", Kind: "backup", Params: &verifier.BackupParams{Path: "/srv"}}}, WithRestore(tmp, time.Hour))
	runs := r.RestoreTest(context.Background())
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1 (the restic repository; the path probe has none): %+v", len(runs), runs)
	}
	run := runs[0]
	if run.Outcome() != "good" || run.Error != "" {
		t.Fatalf("outcome %s: %+v", run.Outcome(), run)
	}
	// 2026-W49: the 49th slice; 20 of the 30 files restored and compared.
	if run.Subset != "49/52" || run.FilesRestored != SampleFiles || run.FilesCompared != SampleFiles || run.Snapshot == "" || run.CheckedBytes <= 0 {
		t.Errorf("run %+v: want subset 49/52, %d files restored and compared, a snapshot and bytes", run, SampleFiles)
	}
	if run.Command != RestoreCommand || run.Node != "node-p" || run.Repo != spec.Params.(*verifier.BackupParams).ResticRepo {
		t.Errorf("run %+v", run)
	}
	// The restored files are gone, the run is an event, and no failure
	// is reported.
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("restored files left in %s: %v", tmp, left)
	}
	if got := restoreEvents(t, f.st); len(got) != 1 || got[0].Outcome() != "good" {
		t.Errorf("events %+v", got)
	}
	if lr := r.LastRestore(); lr == nil || lr.Err != "" || lr.Snapshot != run.Snapshot {
		t.Errorf("LastRestore %+v, want the good run", lr)
	}
	// Another week takes another slice and another sample.
	r2, _, _ := restoreFixture(t, []verifier.Spec{spec}, WithClock(func() time.Time { return now.AddDate(0, 0, 7) }))
	if run2 := r2.RestoreTest(context.Background())[0]; run2.Subset != "50/52" || run2.Outcome() != "good" {
		t.Errorf("next week: %+v", run2)
	}
}

func TestRestoreTestCorrupt(t *testing.T) {
	spec, _ := resticRepo(t)
	repo := spec.Params.(*verifier.BackupParams).ResticRepo
	// Damage every data pack: a byte in the middle of each.
	packs, _ := filepath.Glob(filepath.Join(repo, "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no data pack in the repository")
	}
	for _, p := range packs {
		os.Chmod(p, 0o600)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r, f, _ := restoreFixture(t, []verifier.Spec{spec})
	run := r.RestoreTest(context.Background())[0]
	if run.Outcome() != "FAILED" || run.Why() == "" {
		t.Fatalf("outcome %s: %+v", run.Outcome(), run)
	}
	t.Logf("the damaged repository: %s", run.Why())
	lr := r.LastRestore()
	if lr == nil || lr.Err == "" || lr.Repo != repo {
		t.Fatalf("LastRestore %+v, want the failure", lr)
	}
	// The node's status carries it at once (FillStatus runs under the
	// agent's lock: it reads only what the run left).
	var st peer.NodeStatus
	r.FillStatus(&st)
	if st.Restore == nil || st.Restore.Err != lr.Err {
		t.Errorf("status %+v, want the failure", st.Restore)
	}
	// Read again from the store (an agent restarted): still failing, and
	// no longer once the repository is no longer configured.
	r2, _, _ := restoreFixture(t, []verifier.Spec{spec})
	r2.d.Store = func() *store.Store { return f.st }
	if lr := r2.LastRestore(); lr == nil || lr.Err != run.Why() {
		t.Errorf("after a restart: %+v, want %q", lr, run.Why())
	}
	r3, _, _ := restoreFixture(t, nil)
	r3.d.Store = func() *store.Store { return f.st }
	if lr := r3.LastRestore(); lr != nil {
		t.Errorf("repository no longer configured: %+v, want nil", lr)
	}
}

func TestRestoreTestLocked(t *testing.T) {
	spec, restic := resticRepo(t)
	// A backup that runs until its input ends holds a lock meanwhile.
	backup := restic("backup", "--stdin", "--stdin-filename", "dump.sql")
	in, err := backup.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := backup.Start(); err != nil {
		t.Fatal(err)
	}
	defer backup.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := restic("--no-lock", "list", "locks").Output()
		if len(strings.TrimSpace(string(out))) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup took no lock in 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r, f, _ := restoreFixture(t, []verifier.Spec{spec}, WithRestore(t.TempDir(), 300*time.Millisecond))
	run := r.RestoreTest(context.Background())[0]
	if run.Outcome() != "skipped" || !strings.Contains(run.Skipped, "locked") || !strings.Contains(run.Skipped, fmt.Sprintf("PID %d", backup.Process.Pid)) {
		t.Fatalf("outcome %s: %+v, want skipped naming the backup's PID %d", run.Outcome(), run, backup.Process.Pid)
	}
	if lr := r.LastRestore(); lr != nil {
		t.Errorf("LastRestore %+v: a skipped test is no outcome", lr)
	}
	// The backup was not disturbed: it ends well once its input ends.
	io.WriteString(in, "-- the database dump\n")
	in.Close()
	if err := backup.Wait(); err != nil {
		t.Fatalf("the backup failed: %v", err)
	}
	// The test is tried again and now runs.
	deadline = time.Now().Add(60 * time.Second)
	for {
		runs := restoreEvents(t, f.st)
		if last := runs[len(runs)-1]; last.Outcome() == "good" {
			if last.FilesRestored == 0 {
				t.Errorf("retry %+v", last)
			}
			break
		} else if last.Outcome() == "FAILED" {
			t.Fatalf("retry failed: %+v", last)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no good retry in 60 s: %+v", runs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFillStatusUnderAgentLock: the agent calls FillStatus under its
// lock, and the cluster's state (Deps.State) takes that lock. The
// background refresh must not hold the component's lock while it reads
// the state, or the agent's next status deadlocks (it did, in the lab).
func TestFillStatusUnderAgentLock(t *testing.T) {
	spec, _ := resticRepo(t)
	f := newFixture(t, "primary", now)
	var agentMu sync.Mutex
	r := New(Deps{Conf: func() *config.Config { return &f.conf }, Store: func() *store.Store { return f.st },
		State: func() api.State { agentMu.Lock(); defer agentMu.Unlock(); return f.state },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)), Backups: func() []verifier.Spec { return []verifier.Spec{spec} }},
		WithClock(func() time.Time { return now }))
	status := func() {
		agentMu.Lock()
		defer agentMu.Unlock()
		var st peer.NodeStatus
		r.FillStatus(&st) // starts the refresh, which waits for agentMu
		time.Sleep(200 * time.Millisecond)
	}
	status()
	done := make(chan struct{})
	go func() {
		status()
		status()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("FillStatus blocked under the agent's lock: the refresh holds the component's lock while it waits for the agent's")
	}
}
