// Package e2e drives the real sentry binary against the two-node lab: real
// Debian nodes booted with systemd-nspawn. Every lab test lives in this one
// package so that `go test ./...` never runs two labs at once.
//
// These tests need root and a machine that can run the lab. They run when
// SENTRY_E2E=1 (make test and .ci/run set it); without it they are skipped
// with that reason, and under CI=true they fail instead of skipping.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/lab"
)

// labName keeps the test lab apart from a lab a person runs (`make demo`).
// SENTRY_E2E_LAB changes it, so two people (or two checkouts) can each run
// a test lab on one machine.
var labName = envOr("SENTRY_E2E_LAB", "e2e")

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

// sentryBin is the sentry binary, built with the package's version;
// sentryDeb is the Debian package made of it (make deb's way), which the
// lab installs into the nodes with dpkg; labBin, beside them, is
// sentry-lab, which runs the lab. sentryVersion is the version both carry.
var sentryBin, sentryDeb, labBin, sentryVersion string

func TestMain(m *testing.M) {
	if os.Getenv("SENTRY_E2E") == "1" {
		dir, err := os.MkdirTemp("", "sentry-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sentryBin = filepath.Join(dir, "sentry")
		labBin = filepath.Join(dir, "sentry-lab")
		if err := buildPackage(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		code := m.Run()
		// Never leave a lab running, whatever the tests did.
		exec.Command(labBin, "--name", labName, "down").Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// buildPackage builds sentry-lab, sentry with the package's version and
// the package of it into dir, as make deb does (the version counted from
// git, nfpm as a library).
func buildPackage(dir string) error {
	start := time.Now()
	v, err := exec.Command("go", "run", "../cmd/sentry-deb", "version", "-repo", "..").Output()
	if err != nil {
		return fmt.Errorf("sentry-deb version: %v", err)
	}
	sentryVersion = strings.TrimSpace(string(v))
	steps := [][]string{
		{"go", "build", "-o", labBin, "../cmd/sentry-lab"},
		{"go", "build", "-trimpath", "-ldflags", "-X main.version=" + sentryVersion, "-o", sentryBin, "../sentry"},
		{"go", "run", "../cmd/sentry-deb", "build", "-repo", "..", "-binary", sentryBin, "-version", sentryVersion, "-out", dir},
	}
	for _, step := range steps {
		cmd := exec.Command(step[0], step[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %v", strings.Join(step, " "), err)
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "sentry_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("sentry-deb build left %d packages in %s", len(debs), dir)
	}
	sentryDeb = debs[0]
	fmt.Fprintf(os.Stderr, "e2e: the lab installs %s (built in %.1f s)\n", filepath.Base(sentryDeb), time.Since(start).Seconds())
	return nil
}

// requireLab skips (or, under CI, fails) a test that cannot run here.
func requireLab(t *testing.T) {
	t.Helper()
	reason := ""
	switch {
	case os.Getenv("SENTRY_E2E") != "1":
		reason = "lab end-to-end test: set SENTRY_E2E=1 to run it (needs root, debootstrap, systemd-nspawn)"
	case os.Geteuid() != 0:
		reason = "lab end-to-end test needs root"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(reason + " (CI must run it)")
	}
	t.Skip(reason)
}

// sentry runs the binary against the test lab and returns its stdout:
// sentry(t, "lab", "up") runs sentry-lab up on the test lab, installing
// sentryDeb.
func sentry(t *testing.T, args ...string) string {
	t.Helper()
	out, err := sentryErr(args...)
	if err != nil {
		t.Fatalf("sentry %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// sentryState runs a command that exits 1 when the nodes are not in step
// (drift, compat, config drift): it returns stdout either way, and fails
// the test on any other exit.
func sentryState(t *testing.T, args ...string) string {
	t.Helper()
	out, err := sentryErr(args...)
	if err != nil && !strings.Contains(err.Error(), "exit status 1\n") {
		t.Fatalf("sentry %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func sentryErr(args ...string) (string, error) {
	bin := sentryBin
	if len(args) > 0 && args[0] == "lab" {
		bin = labBin
		args = append([]string{"--name", labName, "--sentry", sentryDeb}, args[1:]...)
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func labStatus(t *testing.T) lab.Status {
	t.Helper()
	var st lab.Status
	out := sentry(t, "lab", "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st
}

func nodeBySet(t *testing.T, st lab.Status, set string) lab.NodeStatus {
	t.Helper()
	for _, n := range st.Nodes {
		if n.DiskSet == set {
			return n
		}
	}
	t.Fatalf("status shows no disk set %s: %+v", set, st)
	return lab.NodeStatus{}
}

func timed(t *testing.T, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	d := time.Since(start)
	t.Logf("%s took %s", what, d.Round(100*time.Millisecond))
	return d
}

// figure logs a measured figure; `make test` runs this package with -v, so
// the figures are in CI's output, each line starting with "figure:".
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("figure: "+format, args...)
}
