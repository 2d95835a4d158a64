package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/lab"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// driftOn is `sentry drift --json` on a node.
func driftOn(t *testing.T, set string) inventory.DriftReport {
	t.Helper()
	var r inventory.DriftReport
	out := sentryState(t, "lab", "exec", set, "--", "sentry", "drift", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("drift --json on %s: %v\n%s", set, err, out)
	}
	return r
}

type compatOut struct {
	PonB  inventory.CompatReport `json:"p_on_b"`
	SonA  inventory.CompatReport `json:"s_on_a"`
	Fixes []inventory.DiskSetFix `json:"fixes"`
}

func compatOn(t *testing.T, set string) compatOut {
	t.Helper()
	var c compatOut
	out := sentryState(t, "lab", "exec", set, "--", "sentry", "compat", "--json")
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("compat --json on %s: %v\n%s", set, err, out)
	}
	return c
}

func hasItem(r inventory.DriftReport, kind, name string) bool {
	for _, it := range r.Items {
		if it.Kind == kind && it.Name == name {
			return true
		}
	}
	return false
}

// dpkgVersion is the installed version of pkg on a node, "" when none.
func dpkgVersion(t *testing.T, set, pkg string) string {
	t.Helper()
	out, err := sentryErr("lab", "exec", set, "--", "dpkg-query", "-W", "-f", "${Status}|${Version}", pkg)
	if err != nil || !strings.HasPrefix(out, "install ok installed|") {
		return ""
	}
	return strings.TrimPrefix(out, "install ok installed|")
}

// TestParity is issue 5's acceptance in the lab: cross-boot compatibility
// fixed by the plan, a package installed on P only found and installed on
// S from the signed local repository, a .deb no signed index lists refused
// until approved, and a corrupt dpkg status that keeps the last good
// inventory.
func TestParity(t *testing.T) {
	requireLab(t)
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")

	// Compat: machine B's NIC needs e1000e, which only S's disk set has
	// (from the lab's driver package).
	var c compatOut
	waitParity(t, "both compatibility reports", 60*time.Second, func() bool {
		c = compatOn(t, "P")
		return c.PonB.Boots != "" && c.SonA.Boots == "yes"
	})
	if c.PonB.Boots != "no" {
		t.Fatalf("disk set P on machine B: %s, want no: %+v", c.PonB.Boots, c.PonB)
	}
	text := sentryState(t, "lab", "exec", "P", "--", "sentry", "compat")
	t.Logf("sentry compat on P:\n%s", text)
	for _, want := range []string{"boots on machine B (node-s's): no", "0000:02:00.0 network 8086:10d3 (" + lab.LabDriver + " on its machine)",
		"fix: install " + lab.LabDriverPackage + " on disk set P (module " + lab.LabDriver + ")", "boots on machine A (node-p's): yes"} {
		if !strings.Contains(text, want) {
			t.Errorf("sentry compat does not say %q", want)
		}
	}
	// A dry run changes nothing.
	dry := sentry(t, "lab", "exec", "P", "--", "sentry", "parity", "apply", "--dry-run")
	if !strings.Contains(dry, "dry run") || !strings.Contains(dry, "would install "+lab.LabDriverPackage+":amd64=1.0") {
		t.Errorf("parity apply --dry-run on P:\n%s", dry)
	}
	// Without a terminal to ask on and without --yes, it refuses (exit 2).
	if out, err := sentryErr("lab", "exec", "P", "--", "sentry", "parity", "apply"); err == nil || !strings.Contains(err.Error(), "exit status 2") {
		t.Errorf("parity apply without a terminal and without --yes: %v\n%s", err, out)
	}
	if v := dpkgVersion(t, "P", lab.LabDriverPackage); v != "" {
		t.Fatalf("the dry run installed %s %s on P", lab.LabDriverPackage, v)
	}
	var applied string
	timed(t, "parity apply on P (the driver package)", func() {
		applied = sentry(t, "lab", "exec", "P", "--", "sentry", "parity", "apply", "--yes")
	})
	t.Logf("parity apply --yes on P:\n%s", applied)
	if !strings.Contains(applied, "done install "+lab.LabDriverPackage+":amd64=1.0") || !strings.Contains(applied, "signed index /srv/sentry-lab-apt/InRelease") {
		t.Errorf("apply on P does not report the install from the signed index:\n%s", applied)
	}
	if c = compatOn(t, "P"); c.PonB.Boots != "yes" {
		t.Fatalf("after the fix, disk set P on machine B: %s: %v", c.PonB.Boots, c.PonB.Because)
	}
	if c = compatOn(t, "S"); c.PonB.Boots != "yes" || c.SonA.Boots != "yes" {
		t.Fatalf("S's view after the fix: P on B %s, S on A %s", c.PonB.Boots, c.SonA.Boots)
	}
	waitEvent(t, "P", "parity-apply", "install "+lab.LabDriverPackage, 10*time.Second)

	// Drift: a package installed on P only, from the lab's repository.
	sentry(t, "lab", "exec", "P", "--", "apt-get", "update", "-o", "Dir::Etc::sourcelist=sources.list.d/sentry-lab.list",
		"-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0")
	sentry(t, "lab", "exec", "P", "--", "apt-get", "install", "-y", lab.HelloPackage)
	installed := time.Now()
	waitParity(t, "drift on S to show "+lab.HelloPackage+" only on P", 60*time.Second, func() bool {
		r := driftOn(t, "S")
		return r.State == inventory.StateDrifted && hasItem(r, "only-on-p", lab.HelloPackage)
	})
	figure(t, "drift on S showed %s %s after the install on P", lab.HelloPackage, time.Since(installed).Round(100*time.Millisecond))
	waitEvent(t, "P", "drift", lab.HelloPackage, 60*time.Second)
	figure(t, "P recorded the drift event %s after the install", time.Since(installed).Round(100*time.Millisecond))
	plan := sentry(t, "lab", "exec", "S", "--", "sentry", "parity", "plan")
	if !strings.Contains(plan, lab.HelloPackage+":all=1.0  (new)") {
		t.Errorf("plan on S:\n%s", plan)
	}
	timed(t, "parity apply on S", func() {
		applied = sentry(t, "lab", "exec", "S", "--", "sentry", "parity", "apply", "--yes")
	})
	t.Logf("parity apply --yes on S:\n%s", applied)
	if !strings.Contains(applied, "done install "+lab.HelloPackage+":all=1.0") || !strings.Contains(applied, "from the peer: "+lab.HelloPackage+"_1.0_all.deb") {
		t.Errorf("apply on S:\n%s", applied)
	}
	if vp, vs := dpkgVersion(t, "P", lab.HelloPackage), dpkgVersion(t, "S", lab.HelloPackage); vp != "1.0" || vs != vp {
		t.Fatalf("%s: P %q, S %q", lab.HelloPackage, vp, vs)
	}
	for _, set := range []string{"S", "P"} {
		if r := driftOn(t, set); r.State != inventory.StateInStep {
			t.Fatalf("drift on %s after apply: %s: %+v", set, r.State, r.Drifted())
		}
	}

	// A .deb no signed index lists: refused until the operator approves it.
	const build = `set -e; d=$(mktemp -d); mkdir -p $d/DEBIAN $d/usr/share/doc/sentry-lab-unsigned
printf 'Package: sentry-lab-unsigned\nVersion: 2.0\nArchitecture: all\nMaintainer: lab <lab@sentry.invalid>\nDescription: built on P, in no index\n' > $d/DEBIAN/control
echo unsigned > $d/usr/share/doc/sentry-lab-unsigned/README
dpkg-deb --build $d /var/cache/apt/archives/sentry-lab-unsigned_2.0_all.deb >/dev/null
dpkg -i /var/cache/apt/archives/sentry-lab-unsigned_2.0_all.deb >/dev/null
sha256sum /var/cache/apt/archives/sentry-lab-unsigned_2.0_all.deb`
	sum := strings.Fields(sentry(t, "lab", "exec", "P", "--", "sh", "-c", build))[0]
	waitParity(t, "drift on S to show sentry-lab-unsigned", 60*time.Second, func() bool {
		return hasItem(driftOn(t, "S"), "only-on-p", "sentry-lab-unsigned")
	})
	out, err := sentryErr("lab", "exec", "S", "--", "sentry", "parity", "apply", "--yes")
	if err == nil || !strings.Contains(err.Error(), "is in no signed apt index") || !strings.Contains(err.Error(), sum) {
		t.Fatalf("an unsigned .deb was not refused: %v\n%s", err, out)
	}
	if v := dpkgVersion(t, "S", "sentry-lab-unsigned"); v != "" {
		t.Fatalf("S installed the unsigned package (%s)", v)
	}
	out = sentry(t, "lab", "exec", "S", "--", "sentry", "parity", "apply", "--yes", "--approve", sum)
	if !strings.Contains(out, "approved by the operator; from the peer") || dpkgVersion(t, "S", "sentry-lab-unsigned") != "2.0" {
		t.Fatalf("approved apply:\n%s", out)
	}

	// A truncated dpkg status: a clear error with the line, the last good
	// inventory kept.
	sentry(t, "lab", "exec", "S", "--", "sh", "-c",
		"cp -p /var/lib/dpkg/status /root/status.good && head -c 30000 /root/status.good > /var/lib/dpkg/status.new && mv /var/lib/dpkg/status.new /var/lib/dpkg/status")
	ev := waitEvent(t, "S", "inventory", "inventory not taken", 30*time.Second)
	t.Logf("event on S: %s", ev.Message)
	if !regexp.MustCompile(`/var/lib/dpkg/status:\d+: `).MatchString(ev.Message) || !strings.Contains(ev.Message, "the last good inventory stays") {
		t.Errorf("the corrupt status event names no line: %s", ev.Message)
	}
	text = sentryState(t, "lab", "exec", "S", "--", "sentry", "drift")
	if !regexp.MustCompile(`newest inventory failed: /var/lib/dpkg/status:\d+: `).MatchString(text) {
		t.Errorf("sentry drift on S does not show the status error:\n%s", text)
	}
	if r := driftOn(t, "S"); r.State != inventory.StateInStep || r.S.State != "fresh" {
		t.Errorf("with the corrupt status, S's last good inventory is not used: %s %+v", r.State, r.S)
	}
	sentry(t, "lab", "exec", "S", "--", "sh", "-c", "cp -p /root/status.good /var/lib/dpkg/status.new && mv /var/lib/dpkg/status.new /var/lib/dpkg/status")
	waitParity(t, "S's inventory to recover", 30*time.Second, func() bool {
		return !strings.Contains(sentryState(t, "lab", "exec", "S", "--", "sentry", "drift"), "newest inventory failed")
	})

	// Both machines' hardware profiles are in the config repo, so S's disk
	// set carries them too; with S gone (its disks out) and P's agent
	// restarted (no peer inventory in memory), P still judges itself on
	// machine B from B's stored profile, and says so.
	waitParity(t, "both machines' hardware profiles on S", 30*time.Second, func() bool {
		out, _ := sentryErr("lab", "exec", "S", "--", "sh", "-c", "grep -l '^# end of profile' /etc/sentry/cluster/hardware/*.toml | wc -l")
		return strings.TrimSpace(out) == "2"
	})
	sentry(t, "lab", "move", "S", "off")
	sentry(t, "lab", "exec", "P", "--", "systemctl", "restart", "sentry-agent")
	waitParity(t, "P's compat on the stored profile of machine B", 30*time.Second, func() bool {
		c = compatOn(t, "P")
		return strings.Contains(c.PonB.MachineFrom, "profile from the config repo")
	})
	if c.PonB.Boots != "yes" {
		t.Fatalf("P on B from B's stored profile: %s: %v", c.PonB.Boots, c.PonB.Because)
	}
	figure(t, "compat with S away: %s", c.PonB.MachineFrom)
}

// waitParity polls ok every half second until it holds or limit passes.
func waitParity(t *testing.T, what string, limit time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
