package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/modules"
)

func writeManifest(t *testing.T, dir, name, version, extra string) string {
	t.Helper()
	p := filepath.Join(dir, name+"-"+version+".toml")
	text := "schema = 2\nname = \"" + name + "\"\nversion = \"" + version + "\"\nkind = \"web\"\ntracked = [\"/etc/" + name + "\"]\n" + extra
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestModulesCommands(t *testing.T) {
	opts := modules.OptionsAt(t.TempDir())
	src := t.TempDir()
	var out, errOut bytes.Buffer
	run := func(f func() error) string {
		t.Helper()
		out.Reset()
		errOut.Reset()
		if err := f(); err != nil {
			t.Fatalf("%v (stderr: %s)", err, errOut.String())
		}
		return out.String()
	}

	got := run(func() error { return runModulesList(&out, &errOut, opts, false) })
	for _, want := range []string{"MODULE", "web-nginx", "1.0.0 (builtin)", "system-base"} {
		if !strings.Contains(got, want) {
			t.Errorf("list: no %q in\n%s", want, got)
		}
	}

	got = run(func() error {
		return runModulesInstall(&out, &errOut, opts, writeManifest(t, src, "intranet", "1.0.0", ""), false)
	})
	if !strings.Contains(got, "intranet@1.0.0: installed") || !strings.Contains(got, "intranet: 1.0.0 (installed") {
		t.Errorf("install:\n%s", got)
	}
	got = run(func() error {
		return runModulesInstall(&out, &errOut, opts, writeManifest(t, src, "intranet", "1.1.0", "# new\n"), true)
	})
	var res modules.InstallResult
	if err := json.Unmarshal([]byte(got), &res); err != nil || !res.Selected || res.Status.Selected != "1.1.0" {
		t.Fatalf("install --json: %v %s", err, got)
	}

	got = run(func() error { return runModulesChange(&out, &errOut, opts, "rollback", "intranet", true) })
	var st modules.Status
	if err := json.Unmarshal([]byte(got), &st); err != nil || st.Selected != "1.0.0" || !st.Pinned {
		t.Fatalf("rollback --json: %v %s", err, got)
	}

	got = run(func() error { return runModulesShow(&out, &errOut, opts, "intranet@1.1.0", false) })
	if !strings.HasPrefix(got, "# intranet 1.1.0 (installed, ") || !strings.Contains(got, "# new\n") || !strings.Contains(got, "intranet: 1.0.0 (installed") {
		t.Errorf("show:\n%s", got)
	}

	err := runModulesRemove(&out, &errOut, opts, "intranet@1.0.0", false)
	if !errors.Is(err, modules.ErrState) {
		t.Errorf("remove of the selected version: %v", err)
	}
	got = run(func() error { return runModulesUse(&out, &errOut, opts, "intranet@1.1.0", false) })
	if !strings.Contains(got, "intranet: 1.1.0 (installed") || !strings.Contains(got, "pinned") {
		t.Errorf("use:\n%s", got)
	}
	got = run(func() error { return runModulesRemove(&out, &errOut, opts, "intranet@1.0.0", true) })
	if !strings.Contains(got, `"removed": "intranet@1.0.0"`) {
		t.Errorf("remove --json:\n%s", got)
	}
	got = run(func() error { return runModulesChange(&out, &errOut, opts, "unpin", "intranet", false) })
	if strings.Contains(got, "pinned") {
		t.Errorf("unpin:\n%s", got)
	}

	sel, err := os.ReadFile(opts.SelectionFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(sel), "[modules.intranet]\nversion = \"1.1.0\"\npinned = false\n") {
		t.Errorf("selection file:\n%s", sel)
	}

	// Usage and file errors map to their exit codes.
	if err := runModulesUse(&out, &errOut, opts, "intranet", false); exitCode(err) != exitUsage {
		t.Errorf("use without a version: %v -> %d", err, exitCode(err))
	}
	bad := writeManifest(t, src, "broken", "1.0.0", "colour = \"red\"\n")
	err = runModulesInstall(&out, &errOut, opts, bad, false)
	if !errors.Is(err, config.ErrInvalid) || exitCode(err) != exitConfig || !strings.Contains(err.Error(), `:6:1: key "colour": unknown key`) {
		t.Errorf("install of a bad manifest: %v -> %d", err, exitCode(err))
	}
	errOut.Reset()
	syntax := filepath.Join(src, "syntax.toml")
	os.WriteFile(syntax, []byte("schema = 2\nname = \"x\n"), 0o644)
	err = runModulesInstall(&out, &errOut, opts, syntax, false)
	if exitCode(err) != exitConfig || !strings.Contains(errorContext(err), "At line 2, column 10") {
		t.Errorf("syntax error: %v; context %q", err, errorContext(err))
	}
}

// The cobra command (not yet in root.go) parses its flags and reaches the
// run functions.
func TestModulesCommandFlags(t *testing.T) {
	root := t.TempDir()
	var out bytes.Buffer
	cmd := newModulesCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--root", root, "pin", "web-nginx", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var st modules.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || !st.Pinned || st.Selected != "1.0.0" {
		t.Fatalf("pin --json: %v %s", err, out.String())
	}
	if _, err := os.Stat(filepath.Join(root, "etc/sentry/modules.toml")); err != nil {
		t.Errorf("--root not used: %v", err)
	}
}
