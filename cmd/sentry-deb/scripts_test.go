package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// scriptRun runs a maintainer script of packaging/ with stubs of
// deb-systemd-helper, deb-systemd-invoke, systemctl, getent and groupadd
// that log their arguments (getent finds group sentry once groupadd made
// it, or when the test says it is there), and with /run/systemd/system,
// /var/lib/sentry and /etc/sentry moved into a temporary folder. It
// returns what the stubs were asked, one call a line, and the script's
// output.
type scriptRun struct {
	t       *testing.T
	dir     string
	systemd bool // whether systemd runs (/run/systemd/system exists)
}

func newScriptRun(t *testing.T, systemd bool) *scriptRun {
	t.Helper()
	need(t, "sh")
	s := &scriptRun{t: t, dir: t.TempDir(), systemd: systemd}
	stubs := filepath.Join(s.dir, "stubs")
	os.MkdirAll(stubs, 0o755)
	group := filepath.Join(s.dir, "group-sentry")
	for _, c := range []string{"deb-systemd-helper", "deb-systemd-invoke", "systemctl", "getent", "groupadd"} {
		stub := "#!/bin/sh\necho \"" + c + " $*\" >> " + filepath.Join(s.dir, "calls") + "\n"
		switch c {
		case "getent":
			stub += "[ \"$*\" = \"group sentry\" ] && [ -e " + group + " ] && echo sentry:x:998: && exit 0\nexit 2\n"
		case "groupadd":
			stub += "touch " + group + "\n"
		}
		if err := os.WriteFile(filepath.Join(stubs, c), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if systemd {
		os.MkdirAll(filepath.Join(s.dir, "run/systemd/system"), 0o755)
	}
	for _, d := range []string{"var/lib/sentry/pki", "etc/sentry/cluster"} {
		os.MkdirAll(filepath.Join(s.dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(s.dir, "var/lib/sentry/stamp.toml"), []byte("kept\n"), 0o644)
	os.WriteFile(filepath.Join(s.dir, "var/lib/sentry/pki/ca.key"), []byte("kept\n"), 0o600)
	os.WriteFile(filepath.Join(s.dir, "etc/sentry/cluster/machines.toml"), []byte("kept\n"), 0o644)
	return s
}

func (s *scriptRun) run(script string, args ...string) (calls []string, output string) {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(repoTop(s.t), "packaging", script))
	if err != nil {
		s.t.Fatal(err)
	}
	text := strings.NewReplacer(
		"/run/systemd/system", filepath.Join(s.dir, "run/systemd/system"),
		"/var/lib/sentry", filepath.Join(s.dir, "var/lib/sentry"),
		"/etc/sentry", filepath.Join(s.dir, "etc/sentry"),
		"/etc/systemd/system", filepath.Join(s.dir, "etc/systemd/system"),
	).Replace(string(b))
	p := filepath.Join(s.dir, script)
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		s.t.Fatal(err)
	}
	os.Remove(filepath.Join(s.dir, "calls"))
	cmd := exec.Command("sh", append([]string{"-e", p}, args...)...)
	cmd.Env = []string{"PATH=" + filepath.Join(s.dir, "stubs") + ":/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out)
	}
	c, _ := os.ReadFile(filepath.Join(s.dir, "calls"))
	if len(c) > 0 {
		calls = strings.Split(strings.TrimSpace(string(c)), "\n")
	}
	return calls, string(out)
}

func sameCalls(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: calls\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var enableAll = []string{
	"deb-systemd-helper unmask sentry-agent.service",
	"deb-systemd-helper --quiet was-enabled sentry-agent.service",
	"deb-systemd-helper enable sentry-agent.service",
	"deb-systemd-helper unmask sentry-bootcheck.service",
	"deb-systemd-helper --quiet was-enabled sentry-bootcheck.service",
	"deb-systemd-helper enable sentry-bootcheck.service",
	"deb-systemd-helper unmask sentry-role.target",
	"deb-systemd-helper --quiet was-enabled sentry-role.target",
	"deb-systemd-helper enable sentry-role.target",
	"deb-systemd-helper unmask sentry-report.timer",
	"deb-systemd-helper --quiet was-enabled sentry-report.timer",
	"deb-systemd-helper enable sentry-report.timer",
}

func TestMaintainerScripts(t *testing.T) {
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(repoTop(t), "packaging", s)).CombinedOutput(); err != nil {
			t.Errorf("sh -n packaging/%s: %v\n%s", s, err, out)
		}
	}
	s := newScriptRun(t, true)

	// The first install makes the group sentry, enables the units and
	// starts the agent and the report's timer: never the boot check.
	calls, _ := s.run("postinst", "configure", "")
	sameCalls(t, "postinst configure (install)", calls, append(append([]string{"getent group sentry", "groupadd --system sentry"}, enableAll...),
		"systemctl --system daemon-reload",
		"deb-systemd-invoke start sentry-agent.service",
		"deb-systemd-invoke start sentry-report.timer"))
	// An upgrade restarts the agent; the group is there already.
	calls, _ = s.run("postinst", "configure", "0.1.0")
	sameCalls(t, "postinst configure 0.1.0 (upgrade)", calls, append(append([]string{"getent group sentry"}, enableAll...),
		"systemctl --system daemon-reload",
		"deb-systemd-invoke restart sentry-agent.service",
		"deb-systemd-invoke start sentry-report.timer"))

	// prerm stops the agent on remove, not on upgrade.
	calls, _ = s.run("prerm", "remove")
	sameCalls(t, "prerm remove", calls, []string{"deb-systemd-invoke stop sentry-report.timer sentry-agent.service"})
	calls, _ = s.run("prerm", "upgrade", "0.2.0")
	sameCalls(t, "prerm upgrade", calls, nil)

	calls, _ = s.run("postrm", "remove")
	sameCalls(t, "postrm remove", calls, []string{
		"deb-systemd-helper mask sentry-agent.service",
		"deb-systemd-helper mask sentry-bootcheck.service",
		"deb-systemd-helper mask sentry-role.target",
		"deb-systemd-helper mask sentry-report.timer",
		"systemctl --system daemon-reload",
	})
	calls, out := s.run("postrm", "purge")
	sameCalls(t, "postrm purge", calls, []string{
		"deb-systemd-helper purge sentry-agent.service",
		"deb-systemd-helper unmask sentry-agent.service",
		"deb-systemd-helper purge sentry-bootcheck.service",
		"deb-systemd-helper unmask sentry-bootcheck.service",
		"deb-systemd-helper purge sentry-role.target",
		"deb-systemd-helper unmask sentry-role.target",
		"deb-systemd-helper purge sentry-report.timer",
		"deb-systemd-helper unmask sentry-report.timer",
	})
	// Purge keeps the disk set's state and says how to remove it.
	for _, f := range []string{"var/lib/sentry/stamp.toml", "var/lib/sentry/pki/ca.key", "etc/sentry/cluster/machines.toml"} {
		if _, err := os.Stat(filepath.Join(s.dir, f)); err != nil {
			t.Errorf("postrm purge removed /%s: %v", f, err)
		}
	}
	for _, w := range []string{"kept " + filepath.Join(s.dir, "var/lib/sentry"), "rm -rf " + filepath.Join(s.dir, "var/lib/sentry")} {
		if !strings.Contains(out, w) {
			t.Errorf("postrm purge does not say %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "drop-ins") {
		t.Errorf("postrm purge speaks of drop-ins where there are none:\n%s", out)
	}

	// The drop-ins of `sentry bootcheck install` stay, and remove says
	// that they hold their services down.
	dropIn := filepath.Join(s.dir, "etc/systemd/system/nginx.service.d/50-sentry-role.conf")
	os.MkdirAll(filepath.Dir(dropIn), 0o755)
	os.WriteFile(dropIn, []byte("[Unit]\nConditionPathExists=/run/sentry/role\n"), 0o644)
	_, out = s.run("postrm", "remove")
	if _, err := os.Stat(dropIn); err != nil {
		t.Errorf("postrm remove removed %s: %v", dropIn, err)
	}
	if !strings.Contains(out, "rm "+dropIn+" && systemctl daemon-reload") {
		t.Errorf("postrm remove does not say how to remove the drop-in:\n%s", out)
	}

	// Without systemd running (a chroot, an image, a container): the
	// units are enabled, nothing is started or stopped.
	s = newScriptRun(t, false)
	calls, _ = s.run("postinst", "configure", "")
	sameCalls(t, "postinst configure without systemd", calls, append([]string{"getent group sentry", "groupadd --system sentry"}, enableAll...))
	calls, _ = s.run("prerm", "remove")
	sameCalls(t, "prerm remove without systemd", calls, nil)
}
