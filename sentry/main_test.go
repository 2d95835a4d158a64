package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/config"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{errors.New("boom"), exitFailure},
		{usageError{errors.New("bad flag")}, exitUsage},
		{fmt.Errorf("load: %w", &config.Error{File: "x.toml", Key: "a", Message: "m"}), exitConfig},
		{fmt.Errorf("run: %w", errNeedRoot), exitNeedsRoot},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	var out bytes.Buffer
	err := runConfigCheck(&out, "../internal/config/testdata/bad-syntax-string.toml", false)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if !strings.Contains(errorContext(err), "At line 2, column 15") {
		t.Errorf("no source context with the error: %q", errorContext(err))
	}
	// The context is printed under the error.
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), []string{"config", "check", "--config", "../internal/config/testdata/bad-syntax-string.toml"}, nil, &stdout, &stderr)
	if lines := strings.Split(stderr.String(), "\n"); code != exitConfig || len(lines) < 3 || !strings.HasPrefix(lines[0], "sentry: ") ||
		!strings.Contains(stderr.String(), "At line 2, column 15") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	out.Reset()
	if err := runConfigCheck(&out, "../internal/config/testdata/good.toml", false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `interval = "2m0s"`) || !strings.Contains(out.String(), ": ok") {
		t.Errorf("effective configuration not printed:\n%s", out.String())
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version", "--json"}, exitOK, `"version":"dev"`},
		{[]string{"version", "extra"}, exitUsage, ""},
		{[]string{"--nosuchflag"}, exitUsage, ""},
		{[]string{"config", "check", "--config", "../internal/config/testdata/bad-unknown-key.toml"}, exitConfig, ""},
		{[]string{"config", "check", "--config", "/nonexistent/sentry.toml"}, exitFailure, ""},
		{[]string{"lab"}, exitUsage, `unknown command "lab" for "sentry"`},
	} {
		var out bytes.Buffer
		code := execute(context.Background(), tc.args, nil, &out, &out)
		if code != tc.code || !strings.Contains(out.String(), tc.out) {
			t.Errorf("sentry %v: exit %d, output %q; want exit %d containing %q", tc.args, code, out.String(), tc.code, tc.out)
		}
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	n, err := writeManPages(newRootCommand(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sentry.1", "sentry-bootcheck-run.1", "sentry-config-check.1", "sentry-version.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Contains(b, []byte(".TH")) || !bytes.Contains(b, []byte("EXIT CODES")) {
			t.Errorf("%s is not a man page with exit codes:\n%.300s", name, b)
		}
	}
	if n < 10 {
		t.Errorf("only %d pages written", n)
	}
	// The lab's pages are sentry-lab's (go run ./cmd/sentry-lab man).
	if m, _ := filepath.Glob(filepath.Join(dir, "sentry-lab*")); len(m) > 0 {
		t.Errorf("sentry writes the lab's pages: %v", m)
	}
}
