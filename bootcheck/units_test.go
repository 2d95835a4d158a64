package bootcheck

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// roleMarker is the role marker as the units name it: RunDir's value
// before any test points it at a fixture.
var roleMarker = filepath.Join(RunDir, RoleName)

func parseUnit(t *testing.T, name, content string) *NetworkFile {
	t.Helper()
	f, err := parseNetwork(name, []byte(content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wantValues(t *testing.T, f *NetworkFile, section, key string, want ...string) {
	t.Helper()
	got := f.values(section, key)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: [%s] %s= is %v, lacks %s", f.Path, section, key, got, w)
		}
	}
}

func oneValue(t *testing.T, f *NetworkFile, section, key string) string {
	t.Helper()
	var got []string
	for _, s := range f.Sections {
		if s.Name != section {
			continue
		}
		for _, kv := range s.Keys {
			if kv.Key == key {
				got = append(got, kv.Value)
			}
		}
	}
	if len(got) != 1 {
		t.Fatalf("%s: [%s] %s= set %d times (%v), want once", f.Path, section, key, len(got), got)
	}
	return got[0]
}

// TestUnitFiles checks what the generated units say: the boot check runs
// before the network is configured and before the role's services, within
// a time budget its own deadline stays below; the role target and the
// drop-ins start the role's services only after it and only with a role.
func TestUnitFiles(t *testing.T) {
	u := parseUnit(t, UnitName, Unit)
	if oneValue(t, u, "Unit", "DefaultDependencies") != "no" {
		t.Error("the boot check keeps the default dependencies (it would wait for sysinit, after the network)")
	}
	wantValues(t, u, "Unit", "Before", "network-pre.target", "systemd-networkd.service", RoleTarget, "sentry-agent.service", "shutdown.target")
	wantValues(t, u, "Unit", "Wants", "network-pre.target")
	wantValues(t, u, "Unit", "After", "local-fs.target")
	wantValues(t, u, "Unit", "Conflicts", "shutdown.target")
	if oneValue(t, u, "Service", "Type") != "oneshot" || oneValue(t, u, "Service", "RemainAfterExit") != "yes" {
		t.Error("not a oneshot that stays active (the role target Requires= it)")
	}
	to, err := time.ParseDuration(oneValue(t, u, "Service", "TimeoutStartSec"))
	if err != nil || to != UnitTimeout {
		t.Fatalf("TimeoutStartSec %v (%v), want %s", to, err, UnitTimeout)
	}
	exe := strings.Fields(oneValue(t, u, "Service", "ExecStart"))
	i := slices.Index(exe, "--budget")
	if len(exe) < 3 || exe[1] != "bootcheck" || exe[2] != "run" || i < 0 || i+1 >= len(exe) {
		t.Fatalf("ExecStart %v: want sentry bootcheck run --budget D", exe)
	}
	budget, err := time.ParseDuration(exe[i+1])
	if err != nil || budget != DefaultBudget {
		t.Fatalf("--budget %s (%v), want %s", exe[i+1], err, DefaultBudget)
	}
	// The margin must leave time to write the safe-mode decision.
	if UnitTimeout-budget < 3*time.Second {
		t.Errorf("budget %s too close to TimeoutStartSec %s", budget, UnitTimeout)
	}
	wantValues(t, u, "Install", "WantedBy", "multi-user.target")

	tg := parseUnit(t, RoleTarget, Target)
	wantValues(t, tg, "Unit", "Requires", UnitName)
	wantValues(t, tg, "Unit", "After", UnitName)
	if c := oneValue(t, tg, "Unit", "ConditionPathExists"); c != roleMarker {
		t.Errorf("role target condition %s, want %s", c, roleMarker)
	}
	wantValues(t, tg, "Install", "WantedBy", "multi-user.target")

	d := parseUnit(t, DropInName, DropIn)
	wantValues(t, d, "Unit", "Wants", UnitName)
	wantValues(t, d, "Unit", "After", UnitName)
	if c := oneValue(t, d, "Unit", "ConditionPathExists"); c != roleMarker {
		t.Errorf("drop-in condition %s, want %s", c, roleMarker)
	}
	// A condition, not a hard dependency: in safe mode the services are
	// skipped, not failed.
	for _, k := range []string{"Requires", "BindsTo", "Requisite"} {
		if len(d.values("Unit", k)) > 0 {
			t.Errorf("drop-in has %s=", k)
		}
	}
}

// TestUnitsVerify installs the units into a root with a service and a
// template service, checks the files written, and has systemd-analyze
// verify them (that sub-step only where systemd-analyze is installed).
func TestUnitsVerify(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib/systemd/system")
	os.MkdirAll(lib, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(lib, "nginx.service"), []byte("[Unit]\nDescription=web\n[Service]\nExecStart="+self+"\n"), 0o644)
	os.WriteFile(filepath.Join(lib, "postgresql@.service"), []byte("[Unit]\nDescription=db %i\n[Service]\nExecStart="+self+" %i\n"), 0o644)
	if _, err := Install(root, []string{"nginx.service", "postgresql@.service", "dovecot.service"}); err != nil {
		t.Fatal(err)
	}
	sys := filepath.Join(root, "etc/systemd/system")
	for name, want := range map[string]string{UnitName: Unit, RoleTarget: Target,
		"nginx.service.d/" + DropInName: DropIn, "postgresql@.service.d/" + DropInName: DropIn} {
		b, err := os.ReadFile(filepath.Join(sys, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %v, content differs: %q", name, err, b)
		}
	}
	if _, err := os.Stat(filepath.Join(sys, "dovecot.service.d")); err == nil {
		t.Error("a drop-in for a service that is not installed")
	}
	for _, l := range []string{"multi-user.target.wants/" + UnitName, "multi-user.target.wants/" + RoleTarget, RoleTarget + ".wants/nginx.service"} {
		if _, err := os.Lstat(filepath.Join(sys, l)); err != nil {
			t.Errorf("link %s: %v", l, err)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the `systemd-analyze verify` step is skipped; the content checks above ran")
		return
	}
	// The unit's ExecStart must name an executable for verify; where sentry
	// is not installed, the test binary stands in (only that path changes).
	const bin = "/usr/local/bin/sentry"
	if _, err := os.Stat(bin); err != nil {
		t.Logf("%s is not installed: verifying with ExecStart=%s", bin, self)
		os.WriteFile(filepath.Join(sys, UnitName), []byte(strings.Replace(Unit, bin, self, 1)), 0o644)
	}
	verify := func(units ...string) string {
		args := append([]string{"verify", "--man=no"}, units...)
		cmd := exec.Command(analyze, args...)
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	units := []string{filepath.Join(sys, UnitName), filepath.Join(sys, RoleTarget),
		filepath.Join(lib, "nginx.service"), filepath.Join(lib, "postgresql@15-main.service")}
	if out := verify(units...); out != "" {
		t.Errorf("systemd-analyze verify complains:\n%s", out)
	}
	// The drop-ins are read: a broken one next to ours is reported.
	for _, u := range []string{"nginx.service", "postgresql@.service"} {
		bad := filepath.Join(sys, u+".d", "99-broken.conf")
		os.WriteFile(bad, []byte("[Unit\n"), 0o644)
		if out := verify(units...); !strings.Contains(out, bad) {
			t.Errorf("a broken drop-in of %s is not reported, so the drop-ins were not verified:\n%s", u, out)
		}
		os.Remove(bad)
	}
}
