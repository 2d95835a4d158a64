package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sentryha/sentry/lab"
)

// TestLab brings one lab up and walks it through what every later test
// relies on: services reachable from the office, databases answering inside
// each node, status, a swap of the disks, a clean down, and recovery from a
// lab left behind by a crash.
func TestLab(t *testing.T) {
	requireLab(t)
	l := lab.New(lab.Options{Name: labName})

	timed(t, "lab up (fresh disk sets)", func() { sentry(t, "lab", "up") })

	t.Run("services from office", func(t *testing.T) {
		for _, ds := range lab.Sets {
			host := strings.Split(ds.Address, "/")[0]
			checks := map[string]func() error{
				"http 80":  func() error { return checkHTTP(host) },
				"smtp 25":  func() error { return checkSMTP(host, ds.Hostname) },
				"imap 143": func() error { return checkIMAP(host) },
				"smb 445":  func() error { return checkSMB(host) },
			}
			for name, check := range checks {
				if err := check(); err != nil {
					t.Errorf("disk set %s (%s) %s: %v", ds.ID, host, name, err)
				}
			}
		}
	})

	// Every lab test runs on nodes that got sentry from its Debian
	// package, as a server does: dpkg knows it, the units are the
	// package's (none shadowed in /etc), and systemd accepts them.
	t.Run("installed from the package", func(t *testing.T) {
		for _, ds := range lab.Sets {
			out := sentry(t, "lab", "exec", ds.ID, "--", "dpkg-query", "-W", "-f", "${Status} ${Version}", "sentry")
			if want := "install ok installed " + sentryVersion; out != want {
				t.Errorf("%s: dpkg-query says %q, want %q", ds.ID, out, want)
			}
			units := []string{"sentry-agent.service", "sentry-bootcheck.service", "sentry-role.target", "sentry-report.service", "sentry-report.timer"}
			out = sentry(t, append([]string{"lab", "exec", ds.ID, "--", "systemctl", "show", "-p", "FragmentPath", "-p", "ExecStart", "-p", "UnitFileState"}, units...)...)
			for _, u := range units {
				if !strings.Contains(out, "FragmentPath=/lib/systemd/system/"+u) {
					t.Errorf("%s: %s is not the package's:\n%s", ds.ID, u, out)
				}
			}
			// Enabled: the agent, the boot check, the role target and the
			// report's timer (its service is static: the timer starts it).
			if strings.Contains(out, "/usr/local/bin") || strings.Count(out, "UnitFileState=enabled") != 4 || strings.Count(out, "path=/usr/bin/sentry ;") != 3 {
				t.Errorf("%s: the units do not run the package's /usr/bin/sentry, or are not all enabled:\n%s", ds.ID, out)
			}
			// --man=no: the base has no man(1) to look the pages up
			// with; the package ships them (cmd/sentry-deb's tests).
			if out, err := sentryErr("lab", "exec", ds.ID, "--", "sh", "-c", "systemd-analyze verify --man=no /lib/systemd/system/"+strings.Join(units, " /lib/systemd/system/")+" 2>&1"); err != nil || out != "" {
				t.Errorf("%s: systemd-analyze verify: %v\n%s", ds.ID, err, out)
			}
		}
	})

	t.Run("databases inside each node", func(t *testing.T) {
		for _, ds := range lab.Sets {
			out := sentry(t, "lab", "exec", ds.ID, "--", "runuser", "-u", "postgres", "--", "psql", "-XtAc", "select 6*7")
			if strings.TrimSpace(out) != "42" {
				t.Errorf("%s: postgres answered %q", ds.ID, out)
			}
			out = sentry(t, "lab", "exec", ds.ID, "--", "mariadb", "-N", "-e", "select 6*7")
			if strings.TrimSpace(out) != "42" {
				t.Errorf("%s: mariadb answered %q", ds.ID, out)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		st := labStatus(t)
		for _, want := range []struct{ set, hw, mac, host string }{
			{"P", l.NS("a"), "02:00:00:00:0a:01", "node-p"},
			{"S", l.NS("b"), "02:00:00:00:0b:01", "node-s"},
		} {
			n := nodeBySet(t, st, want.set)
			if n.Hardware != want.hw || !n.Running || n.SystemState != "running" || n.Hostname != want.host {
				t.Errorf("%s: %+v, want on %s, running", want.set, n, want.hw)
			}
			for svc, state := range n.Services {
				if state != "active" {
					t.Errorf("%s: %s is %s", want.set, svc, state)
				}
			}
			// The lab's services plus the agent it installed.
			if len(n.Services) != len(lab.Services)+1 || n.Services["sentry-agent"] != "active" {
				t.Errorf("%s: services %v, want the %d lab services and sentry-agent", want.set, n.Services, len(lab.Services))
			}
			if len(n.NICs) != 1 || n.NICs[0].MAC != want.mac {
				t.Errorf("%s: NICs %+v, want one with MAC %s", want.set, n.NICs, want.mac)
			}
		}
		// The lab installed the package of this very binary into both disk sets.
		want := strings.TrimSpace(sentry(t, "version"))
		for _, ds := range lab.Sets {
			if got := strings.TrimSpace(sentry(t, "lab", "exec", ds.ID, "--", "/usr/bin/sentry", "version")); got != want {
				t.Errorf("%s: sentry version inside is %q, want %q", ds.ID, got, want)
			}
		}
		if logs := sentry(t, "lab", "logs", "S"); !strings.Contains(logs, "booting disk set S on hardware "+l.NS("b")) ||
			!strings.Contains(logs, "node-s systemd[1]: Reached target multi-user.target") {
			t.Errorf("lab logs S shows no boot of S on %s:\n%.500s", l.NS("b"), logs)
		}
		hostname := strings.TrimSpace(sentry(t, "lab", "exec", "hw-a", "--", "hostname"))
		if hostname != "node-p" {
			t.Errorf("hw-a runs %q, want node-p", hostname)
		}
		if _, err := sentryErr("lab", "exec", "P", "--", "false"); err == nil || !strings.Contains(err.Error(), "exit status 1") {
			t.Errorf("exec of false: %v, want exit status 1", err)
		}
		if _, err := sentryErr("lab", "exec", "Q", "--", "true"); err == nil || !strings.Contains(err.Error(), `no running node "Q"`) {
			t.Errorf("exec on unknown node: %v", err)
		}
	})

	t.Run("swap", func(t *testing.T) {
		timed(t, "lab swap", func() { sentry(t, "lab", "swap") })
		st := labStatus(t)
		p, s := nodeBySet(t, st, "P"), nodeBySet(t, st, "S")
		if p.Hardware != l.NS("b") || s.Hardware != l.NS("a") {
			t.Fatalf("after swap P is on %s and S on %s", p.Hardware, s.Hardware)
		}
		if !p.Running || !s.Running {
			t.Fatalf("after swap: P running %v, S running %v", p.Running, s.Running)
		}
		// The node running P must see machine B's NIC, not A's.
		out := sentry(t, "lab", "exec", "P", "--", "ip", "-j", "link", "show")
		var links []struct {
			IfName  string `json:"ifname"`
			Address string `json:"address"`
		}
		if err := json.Unmarshal([]byte(out), &links); err != nil {
			t.Fatalf("ip -j link inside P: %v\n%s", err, out)
		}
		var macs []string
		for _, ln := range links {
			macs = append(macs, ln.IfName+"="+ln.Address)
		}
		joined := strings.Join(macs, " ")
		if !strings.Contains(joined, "eno1=02:00:00:00:0b:01") || strings.Contains(joined, "02:00:00:00:0a:01") {
			t.Errorf("P on hw-b sees %s, want eno1=02:00:00:00:0b:01 only", joined)
		}
		if h := strings.TrimSpace(sentry(t, "lab", "exec", "hw-b", "--", "hostname")); h != "node-p" {
			t.Errorf("hw-b runs %q after the swap, want node-p", h)
		}
	})

	t.Run("down leaves nothing", func(t *testing.T) {
		before := recordedPIDs(t)
		sentry(t, "lab", "down")
		assertNothingLeft(t, l, before)
	})

	t.Run("warm up and recovery from a stale lab", func(t *testing.T) {
		timed(t, "lab up (warm cache)", func() { sentry(t, "lab", "up") })
		// Make the lab stale as a crash would: nspawn of P killed hard (its
		// node goes on running, orphaned, in hw-a), state file left behind.
		pids := recordedPIDs(t)
		if len(pids) != 2 {
			t.Fatalf("state records %d nodes, want 2", len(pids))
		}
		syscall.Kill(pids[0], syscall.SIGKILL)
		timed(t, "lab up over a stale lab", func() { sentry(t, "lab", "up") })
		st := labStatus(t)
		for _, n := range st.Nodes {
			if !n.Running || n.SystemState != "running" {
				t.Errorf("after recovery %s: %+v", n.DiskSet, n)
			}
		}
		// Worse: the state file is lost too. The nodes' processes are then
		// found as those in the lab's namespaces with a PID namespace of
		// their own, and nothing else (this test process dialled from the
		// office namespace and must survive).
		if err := checkHTTP(strings.Split(lab.Sets[0].Address, "/")[0]); err != nil {
			t.Errorf("http from office before losing the state: %v", err)
		}
		pids = recordedPIDs(t)
		syscall.Kill(pids[1], syscall.SIGKILL)
		if err := os.Remove(filepath.Join(lab.DefaultStateDir, labName, "state.json")); err != nil {
			t.Fatal(err)
		}
		timed(t, "lab up over a stale lab without its state", func() { sentry(t, "lab", "up") })
		if st := labStatus(t); len(st.Nodes) != 2 || !st.Nodes[0].Running || !st.Nodes[1].Running {
			t.Errorf("after recovery without state: %+v", st)
		}
		before := recordedPIDs(t)
		sentry(t, "lab", "down")
		assertNothingLeft(t, l, append(before, pids...))
	})
}

func recordedPIDs(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lab.DefaultStateDir, labName, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st lab.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range st.Nodes {
		pids = append(pids, n.NspawnPID)
	}
	return pids
}

func assertNothingLeft(t *testing.T, l *lab.Lab, pids []int) {
	t.Helper()
	for _, ns := range []string{l.NS("a"), l.NS("b"), l.NS("office")} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s still exists", ns)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), filepath.Join(lab.DefaultStateDir, labName)+"/") {
		t.Errorf("a mount of the lab is left:\n%s", mi)
	}
	for _, p := range pids {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline"); err == nil && strings.Contains(string(b), "nspawn") {
			t.Errorf("nspawn PID %d still runs", p)
		}
	}
	if left := l.Leftovers(t.Context()); len(left) > 0 {
		t.Errorf("leftovers: %v", left)
	}
	if _, err := os.Stat(filepath.Join(lab.DefaultStateDir, labName, "state.json")); err == nil {
		t.Error("state file left after down")
	}
}
