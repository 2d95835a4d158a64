package verifier

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/restic"
)

// needRestic skips without restic, except under CI, where the Makefile's
// deps installed it and its absence is a failure.
func needRestic(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("restic")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("restic is not installed (CI=true: make deps installs it): %v", err)
		}
		t.Skipf("restic is not installed (apt-get install restic); the restic backup probe is not tested: %v", err)
	}
	return bin
}

// resticRepo makes a real restic repository in a temporary folder, with
// one snapshot of a small folder when snapshot is set.
func resticRepo(t *testing.T, bin, password string, snapshot bool) (repo, pwFile string) {
	t.Helper()
	dir := t.TempDir()
	repo, pwFile = filepath.Join(dir, "repo"), filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "ledger.txt"), []byte("the books\n"), 0o644)
	run := func(args ...string) {
		cmd := exec.Command(bin, append([]string{"-r", repo, "--password-file", pwFile, "--no-cache"}, args...)...)
		cmd.Env = restic.Env(os.Environ())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("init")
	if snapshot {
		run("backup", "--quiet", data)
	}
	return repo, pwFile
}

func TestBackupRestic(t *testing.T) {
	bin := needRestic(t)
	const password = "correct horse battery staple"
	repo, pwFile := resticRepo(t, bin, password, true)
	// RESTIC_ variables of the agent's own environment must not get in the
	// way (restic refuses a password command or a repository file beside
	// the probe's options).
	t.Setenv("RESTIC_PASSWORD", "not the password")
	t.Setenv("RESTIC_PASSWORD_COMMAND", "echo not the password")
	t.Setenv("RESTIC_REPOSITORY_FILE", filepath.Join(t.TempDir(), "none"))
	run := func(p kv, timeout time.Duration) (Result, string) {
		var log bytes.Buffer
		l := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		return Run(context.Background(), Spec{Name: "backup", Kind: "backup", Params: mustParams(t, "backup", p), Timeout: timeout}, l), log.String()
	}
	params := func(kvs ...string) kv {
		p := kv{"restic_repo": repo, "restic_password_file": pwFile}
		for i := 0; i+1 < len(kvs); i += 2 {
			p[kvs[i]] = kvs[i+1]
		}
		return p
	}

	r, log := run(params("max_age", "1h"), 20*time.Second)
	if !r.OK || len(r.Phases) != 1 || r.Phases[0].Name != "restic snapshots" {
		t.Fatalf("a snapshot made just now, max_age 1h: %+v\nlog:\n%s", r, log)
	}
	if r.Values["snapshot"] == "" || r.Values["snapshot_age"] == "" {
		t.Errorf("values: %v, want snapshot and snapshot_age", r.Values)
	}
	if age, err := time.ParseDuration(r.Values["snapshot_age"]); err != nil || age > 10*time.Minute {
		t.Errorf("snapshot_age %q", r.Values["snapshot_age"])
	}
	if strings.Contains(log, password) || strings.Contains(r.Message, password) {
		t.Errorf("the password is in the log or the result:\n%s", log)
	}

	r, _ = run(params("max_age", "1ms"), 20*time.Second)
	if r.OK || !strings.HasPrefix(r.Message, "restic snapshots: the newest snapshot in "+repo+" (") || !strings.Contains(r.Message, "(more than 1ms)") {
		t.Errorf("max_age 1ms: %+v", r)
	}

	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("guess\n"), 0o600)
	r, _ = run(params("restic_password_file", wrong), 20*time.Second)
	if r.OK || !strings.HasPrefix(r.Message, "restic snapshots: restic exit status 1: Fatal: wrong password") {
		t.Errorf("wrong password: %+v", r)
	}

	// A path and a repository: both must be fresh.
	files := t.TempDir()
	os.WriteFile(filepath.Join(files, "dump.sql"), []byte("x"), 0o644)
	r, _ = run(params("path", files), 20*time.Second)
	if !r.OK || len(r.Phases) != 2 || r.Phases[0].Name != "newest file" || r.Phases[1].Name != "restic snapshots" {
		t.Errorf("path and repository: %+v", r)
	}

	empty, emptyPW := resticRepo(t, bin, password, false)
	r, _ = run(kv{"restic_repo": empty, "restic_password_file": emptyPW}, 20*time.Second)
	if r.OK || r.Message != "restic snapshots: no snapshot in the restic repository "+empty {
		t.Errorf("no snapshots: %+v", r)
	}

	r, _ = run(kv{"restic_repo": filepath.Join(t.TempDir(), "none"), "restic_password_file": pwFile}, 20*time.Second)
	if r.OK || !strings.HasPrefix(r.Message, "restic snapshots: restic exit status 1: Fatal: ") {
		t.Errorf("no repository: %+v", r)
	}
}

func TestBackupResticMissingOrStalled(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("x\n"), 0o600)

	p := mustParams(t, "backup", kv{"restic_repo": "/srv/backup", "restic_password_file": pw}).(*BackupParams)
	p.Restic = filepath.Join(t.TempDir(), "no-restic-here")
	r := Run(context.Background(), Spec{Kind: "backup", Params: p, Timeout: 5 * time.Second}, nil)
	if r.OK || !strings.HasPrefix(r.Message, "restic snapshots: restic_repo is set but restic is not installed") {
		t.Errorf("restic missing: %+v", r)
	}

	r = Run(context.Background(), Spec{Kind: "backup", Params: &BackupParams{ResticRepo: "/srv/backup", MaxAge: time.Hour}, Timeout: 5 * time.Second}, nil)
	if r.OK || !strings.Contains(r.Message, "parameter restic_password_file is missing") {
		t.Errorf("no password file: %+v", r)
	}

	// Stand-ins for restic, found in PATH (a probe cut off at its deadline
	// may still run restic after Run returned).
	bin := t.TempDir()
	t.Setenv("PATH", bin)
	fake := func(script string) { os.WriteFile(filepath.Join(bin, "restic"), []byte("#!/bin/sh\n"+script), 0o755) }

	// A repository URL's password is not repeated in the result, and the
	// URL is not on restic's command line (any account can read argv).
	argv := filepath.Join(t.TempDir(), "argv")
	fake("echo \"$@\" > " + argv + "\necho \"Fatal: unable to open repository at $RESTIC_REPOSITORY\" >&2\nexit 1\n")
	r = Run(context.Background(), Spec{Kind: "backup", Params: mustParams(t, "backup", kv{"restic_repo": "rest:https://backup:s3cret@nas:8000/office", "restic_password_file": pw}), Timeout: 5 * time.Second}, nil)
	if r.OK || strings.Contains(r.Message, "s3cret") || !strings.Contains(r.Message, "Fatal: unable to open repository at rest:https://backup:***@nas:8000/office") {
		t.Errorf("repository URL: %+v", r)
	}
	if b, err := os.ReadFile(argv); err != nil || strings.Contains(string(b), "nas:8000") || !strings.Contains(string(b), "snapshots") {
		t.Errorf("restic's command line: %q %v", b, err)
	}

	// A restic that never answers is cut off at the probe's deadline.
	fake("exec /bin/sleep 30\n")
	start := time.Now()
	r = Run(context.Background(), Spec{Kind: "backup", Params: mustParams(t, "backup", kv{"restic_repo": "/srv/backup", "restic_password_file": pw}), Timeout: 300 * time.Millisecond}, nil)
	// The message is the phase's error, or (when the probe's own deadline
	// is seen first: a race under load) "no answer within"; either way
	// the phase is named, with its error.
	named := len(r.Phases) > 0 && r.Phases[len(r.Phases)-1].Name == "restic snapshots" && r.Phases[len(r.Phases)-1].Error != ""
	if el := time.Since(start); r.OK || el > 2*time.Second || !named ||
		!(strings.HasPrefix(r.Message, "restic snapshots: ") || strings.HasPrefix(r.Message, "no answer within 300ms")) {
		t.Errorf("stalled restic: after %s: %+v", el, r)
	}
}
