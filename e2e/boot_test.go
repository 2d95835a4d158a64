package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/bootcheck"
)

// bootOf is the boot decision of the node running disk set set.
func bootOf(t *testing.T, set string) bootcheck.Result {
	t.Helper()
	var r bootcheck.Result
	out := sentry(t, "lab", "exec", set, "--", "sentry", "bootcheck", "explain", "--json")
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bootcheck explain --json on %s: %v\n%s", set, err, out)
	}
	return r
}

type nodeView struct {
	Name      string   `json:"name"`
	Self      bool     `json:"self"`
	Role      string   `json:"role"`
	Hardware  string   `json:"hardware"`
	Verify    string   `json:"verify"`
	VerifyRed []string `json:"verify_red"`
	Boot      string   `json:"boot"`
	SafeMode  string   `json:"safe_mode"`
	Failover  bool     `json:"failover"`
}

func selfStatus(t *testing.T, set string) (nodeView, error) {
	var st struct {
		Nodes []nodeView `json:"nodes"`
	}
	out, err := sentryErr("lab", "exec", set, "--", "sentry", "status", "--json")
	if err != nil {
		return nodeView{}, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nodeView{}, err
	}
	for _, n := range st.Nodes {
		if n.Self {
			return n, nil
		}
	}
	return nodeView{}, fmt.Errorf("no self in %s", out)
}

// waitGreen waits until set's own verifier reports every probe green and
// returns how long after since that was.
func waitGreen(t *testing.T, set string, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	var last nodeView
	for time.Now().Before(since.Add(limit)) {
		n, err := selfStatus(t, set)
		if err == nil {
			last = n
			if strings.HasPrefix(n.Verify, "15/15 green") {
				return time.Since(since)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s not green within %s of boot: %+v", set, limit, last)
	return 0
}

// checkPlacement asserts that each disk set runs on the machine given, with
// its role's address on that machine's NIC and every lab service up.
func checkPlacement(t *testing.T, want map[string]string) {
	t.Helper()
	st := labStatus(t)
	addr := map[string]string{"P": "192.0.2.10/24", "S": "192.0.2.20/24"}
	nic := map[string]string{"a": "enp1s0", "b": "eno1", "c": "ens3"}
	for set, hw := range want {
		n := nodeBySet(t, st, set)
		if n.Hardware != labName+"-hw-"+hw {
			t.Fatalf("%s runs on %s, want hw-%s", set, n.Hardware, hw)
		}
		if len(n.NICs) != 1 || n.NICs[0].Name != nic[hw] || !contains(n.NICs[0].Address, addr[set]) {
			t.Fatalf("%s on hw-%s: NICs %+v, want %s on %s", set, hw, n.NICs, addr[set], nic[hw])
		}
		for svc, state := range n.Services {
			if state != "active" {
				t.Fatalf("%s: %s is %s", set, svc, state)
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// swapAndCheck swaps the disk sets and checks the acceptance of one
// failover: roles, addresses on the new machine's NIC, services, a green
// verifier on P within 60 s of boot, and the failover event when P is away.
// It returns bootcheck's wall times (P with its probe, S without).
func swapAndCheck(t *testing.T, round int) (pMS, sMS float64) {
	t.Helper()
	before := labStatus(t)
	pHW := strings.TrimPrefix(nodeBySet(t, before, "P").Hardware, labName+"-hw-")
	newP, newS := map[string]string{"a": "b", "b": "a"}[pHW], pHW
	start := time.Now()
	sentry(t, "lab", "swap")
	swapTook := time.Since(start)
	checkPlacement(t, map[string]string{"P": newP, "S": newS})
	p, s := bootOf(t, "P"), bootOf(t, "S")
	if p.Outcome != bootcheck.Primary || s.Outcome != bootcheck.Secondary {
		t.Fatalf("round %d: P %s (%s), S %s (%s)", round, p.Outcome, p.Reason, s.Outcome, s.Reason)
	}
	if p.Failover != (newP != "a") {
		t.Fatalf("round %d: P on hw-%s failover=%v", round, newP, p.Failover)
	}
	if newP != "a" {
		e := waitEventAfter(t, "P", "failover", "runs on machine mac:02:00:00:00:0b:01", start, 30*time.Second)
		if e.Fields["generation"] == "" || e.Fields["disk_set"] == "" || e.Fields["hardware"] != "mac:02:00:00:00:0b:01" {
			t.Fatalf("failover event without hardware, disk set and generation: %+v", e)
		}
	}
	green := waitGreen(t, "P", start.Add(swapTook-5*time.Second), 60*time.Second)
	figure(t, "round %d: P on hw-%s (failover %v), S on hw-%s: swap %s, P green %s after boot; bootcheck P %.1f ms (probe %s), S %.1f ms",
		round, newP, p.Failover, newS, swapTook.Round(100*time.Millisecond), green.Round(100*time.Millisecond),
		p.TookMS, probeSummary(p), s.TookMS)
	return p.TookMS, s.TookMS
}

// lastConsoleDecision is the last boot decision bootcheck printed in this
// boot of disk set set, as its journal holds it: `sentry bootcheck run`
// prints it to standard output (the journal) and to /dev/console. (With
// nspawn's passive console the lab's console log loses what is written
// between the start of a boot and its shutdown, docs/lab.md, so the
// journal is where the lab can read it.)
func lastConsoleDecision(t *testing.T, set string) string {
	t.Helper()
	out := sentry(t, "lab", "exec", set, "--", "journalctl", "-b", "-u", "sentry-bootcheck", "-o", "cat", "--no-pager")
	last := ""
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "sentry bootcheck: ")
		if !ok {
			continue
		}
		decision := true
		for _, p := range []string{"warning:", "network:", "FAILOVER:", "the role's services"} {
			if strings.HasPrefix(rest, p) {
				decision = false
			}
		}
		if decision {
			last = strings.TrimSpace(line)
		}
	}
	return last
}

func probeSummary(r bootcheck.Result) string {
	var l []string
	for _, p := range r.Probes {
		l = append(l, fmt.Sprintf("%s %.0f ms", p.Name, p.MS))
	}
	return strings.Join(l, ", ")
}

// pairedLab brings a fresh lab up, pairs it, sets the canaries up, and
// waits until S has the machine profiles.
func pairedLab(t *testing.T) {
	t.Helper()
	sentry(t, "lab", "up")
	t.Cleanup(func() { labDown(t) })
	sentry(t, "lab", "pair")
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "sentry", "verifier", "setup")
	}
	waitFileOn(t, "S", bootcheck.MachinesFile, `home_of = "node-s"`, 60*time.Second)
}

// TestBootcheck is issue 7's acceptance in the lab: swap and swap back, the
// safe-mode cases, and two disk sets claiming primary.
func TestBootcheck(t *testing.T) {
	requireLab(t)
	pairedLab(t)
	if r := bootOf(t, "P"); r.Outcome != bootcheck.Unpaired {
		t.Fatalf("first boot (before pairing) was %s, want unpaired", r.Outcome)
	}
	var pTimes, sTimes []float64
	for round := 1; round <= 2; round++ {
		p, s := swapAndCheck(t, round)
		pTimes, sTimes = append(pTimes, p), append(sTimes, s)
		if round == 1 {
			// The lab's machine B has a NIC whose module disk set P's
			// kernel lacks (docs/lab.md): bootcheck on B says so.
			d := bootOf(t, "P").Drivers
			if d == nil || d.Boots != "no" || !strings.Contains(strings.Join(d.Because, " "), "e1000e") {
				t.Fatalf("P on hw-b: driver check %+v, want no, naming e1000e", d)
			}
			// The boot went on, and said so as an event too.
			waitEvent(t, "P", "bootcheck-warning", "these disks lack drivers for this machine", 30*time.Second)
			if d := bootOf(t, "S").Drivers; d == nil || d.Boots != "yes" {
				t.Fatalf("S on hw-a: driver check %+v, want yes", d)
			}
		}
	}
	// Back home: P's boot is no failover; the explain text says why.
	explain := sentry(t, "lab", "exec", "P", "--", "sentry", "bootcheck", "explain")
	for _, want := range []string{"decision:   PRIMARY", "home machine", "probe:      arp 192.0.2.10 on enp1s0: no answer", "probe:      peer node-s"} {
		if !strings.Contains(explain, want) {
			t.Errorf("explain lacks %q:\n%s", want, explain)
		}
	}

	// Safe-mode cases, each on P, each undone before the next.
	stampPath := "/var/lib/sentry/stamp.toml"
	reboot := func(hw string) { sentry(t, "lab", "move", "P", hw) }
	expectSafe := func(what, reason string) {
		t.Helper()
		r := bootOf(t, "P")
		if r.Outcome != bootcheck.SafeMode || !strings.Contains(r.Reason, reason) {
			t.Fatalf("%s: P's boot is %s (%s), want safe mode with %q", what, r.Outcome, r.Reason, reason)
		}
		// The role's services are held; ssh and the agent run; status says why.
		out, _ := sentryErr("lab", "exec", "P", "--", "systemctl", "is-active", "nginx", "postfix", "postgresql@15-main", "ssh", "sentry-agent")
		if got := strings.Fields(out); strings.Join(got, " ") != "inactive inactive inactive active active" {
			t.Fatalf("%s: nginx postfix postgresql ssh agent are %v", what, got)
		}
		st := sentry(t, "lab", "exec", "P", "--", "sentry", "status")
		if !strings.Contains(st, "SAFE MODE: ") || !strings.Contains(st, reason) {
			t.Fatalf("%s: status does not show the safe mode:\n%s", what, st)
		}
		// The boot's own output says it (journal and console).
		if last := lastConsoleDecision(t, "P"); !strings.Contains(last, "sentry bootcheck: SAFE MODE: ") || !strings.Contains(last, reason) {
			t.Fatalf("%s: the console's last boot decision is %q", what, last)
		}
		// Nothing holds the primary's address in safe mode.
		if n := nodeBySet(t, labStatus(t), "P"); len(n.NICs) > 0 && contains(n.NICs[0].Address, "192.0.2.10/24") && !strings.Contains(what, "answering") {
			t.Fatalf("%s: P holds 192.0.2.10 in safe mode", what)
		}
		figure(t, "%s: safe mode in %.1f ms: %s", what, r.TookMS, r.Reason)
	}
	expectPrimary := func(what string) {
		t.Helper()
		if r := bootOf(t, "P"); r.Outcome != bootcheck.Primary {
			t.Fatalf("%s: P is %s (%s)", what, r.Outcome, r.Reason)
		}
		if last := lastConsoleDecision(t, "P"); !strings.HasPrefix(last, "sentry bootcheck: PRIMARY: ") {
			t.Fatalf("%s: the console's last boot decision is %q", what, last)
		}
		checkPlacement(t, map[string]string{"P": "a"})
	}
	shell := func(cmd string) { sentry(t, "lab", "exec", "P", "--", "sh", "-c", cmd) }

	// Unknown hardware: P on hw-c.
	reboot("c")
	expectSafe("unknown machine", "is not one of this cluster's machines")
	waitEvent(t, "P", "bootcheck", "boot decision: safe-mode", 30*time.Second)
	// Adopt: refused without a "yes", then accepted; the role's services
	// start on hw-c at once, with the primary's address on its NIC.
	// Without a terminal to ask on, it refuses (exit 2); on a terminal (a
	// pty made by script), "no" declines.
	if out, err := sentryErr("lab", "exec", "P", "--", "sh", "-c", "sentry bootcheck adopt </dev/null"); err == nil || !strings.Contains(err.Error(), "exit status 2") ||
		!strings.Contains(err.Error(), "no terminal to ask on") {
		t.Fatalf("adopt without a terminal: err %v\n%s", err, out)
	}
	// The answer is typed again each second until the question reads it:
	// on a loaded machine, script(1) once lost an answer written before
	// sentry asked, and the question waited for ever. timeout bounds it.
	if out, err := sentryErr("lab", "exec", "P", "--", "sh", "-c",
		"(sleep 1; for i in 1 2 3 4 5 6 7 8 9 10; do printf 'no\\n'; sleep 1; done) | timeout 60 script -qec 'sentry bootcheck adopt' /dev/null"); err == nil || !strings.Contains(out+err.Error(), "not adopted") {
		t.Fatalf("adopt answered no: err %v\n%s", err, out)
	}
	expectSafe("unknown machine, adopt declined", "is not one of this cluster's machines")
	adoptAt := time.Now()
	ad := sentry(t, "lab", "exec", "P", "--", "sentry", "bootcheck", "adopt", "--yes")
	if !strings.Contains(ad, "adopted mac:02:00:00:00:0c:01 in place of mac:02:00:00:00:0a:01") {
		t.Fatalf("adopt --yes:\n%s", ad)
	}
	if r := bootOf(t, "P"); r.Outcome != bootcheck.Primary {
		t.Fatalf("after adopt: P is %s (%s)", r.Outcome, r.Reason)
	}
	waitEventAfter(t, "P", "adopt", "mac:02:00:00:00:0c:01", adoptAt, 10*time.Second)
	waitUntil(t, "P's role services on the adopted hw-c", 60*time.Second, func() bool {
		out, _ := sentryErr("lab", "exec", "P", "--", "systemctl", "is-active", "nginx", "postfix", "postgresql@15-main")
		return strings.Join(strings.Fields(out), " ") == "active active active"
	})
	checkPlacement(t, map[string]string{"P": "c"})
	// The adopted machine stays known to this disk set across a reboot.
	reboot("c")
	if r := bootOf(t, "P"); r.Outcome != bootcheck.Primary {
		t.Fatalf("P rebooted on the adopted hw-c: %s (%s)", r.Outcome, r.Reason)
	}
	reboot("a")
	expectPrimary("back on hw-a")

	// A missing stamp.
	shell("mv " + stampPath + " " + stampPath + ".away")
	reboot("a")
	expectSafe("missing stamp", "is missing, yet this disk set has cluster keys")
	shell("mv " + stampPath + ".away " + stampPath)
	reboot("a")
	expectPrimary("stamp back")

	// A corrupt stamp.
	shell("cp " + stampPath + " /root/stamp.good && printf 'schema_version = 1\\nrole = [\\n' > " + stampPath)
	reboot("a")
	expectSafe("corrupt stamp", "the disk stamp is unreadable")
	shell("cp /root/stamp.good " + stampPath)
	reboot("a")
	expectPrimary("stamp repaired")

	// A stamp of another cluster.
	shell("sed -i 's/^cluster_id = .*/cluster_id = \"0123456789abcdef0123456789abcdef\"/' " + stampPath)
	reboot("a")
	expectSafe("another cluster's stamp", "is of cluster 0123456789abcdef0123456789abcdef")
	shell("cp /root/stamp.good " + stampPath)
	reboot("a")
	expectPrimary("own stamp again")

	// The primary's address already answers (a squatter in the office).
	office := labName + "-office"
	if err := exec.Command("ip", "-n", office, "addr", "add", "192.0.2.10/24", "dev", "br0").Run(); err != nil {
		t.Fatal(err)
	}
	reboot("a")
	expectSafe("address already answering", "the primary's address 192.0.2.10 already answers")
	exec.Command("ip", "-n", office, "addr", "del", "192.0.2.10/24", "dev", "br0").Run()
	reboot("a")
	expectPrimary("address free again")

	// Both disk sets claim primary: P's disks "lost", S promoted (gen 2),
	// then P's disks come back. P, the older generation, refuses.
	sentry(t, "lab", "move", "P", "off")
	out := sentry(t, "lab", "exec", "S", "--", "sentry", "promote", "--yes", "--json")
	var pr struct{ Generation uint64 }
	json.Unmarshal([]byte(out), &pr)
	if pr.Generation != 2 {
		t.Fatalf("promote: %s", out)
	}
	sentry(t, "lab", "move", "S", "b")
	if r := bootOf(t, "S"); r.Outcome != bootcheck.Primary || r.Generation != 2 {
		t.Fatalf("promoted S booted %s gen %d (%s)", r.Outcome, r.Generation, r.Reason)
	}
	if n := nodeBySet(t, labStatus(t), "S"); !contains(n.NICs[0].Address, "192.0.2.10/24") {
		t.Fatalf("promoted S does not hold the primary's address: %+v", n.NICs)
	}
	waitEvent(t, "S", "promote", "generation 2", 10*time.Second)
	reboot("a")
	expectSafe("older primary generation", "another node holds the primary role")
	if r := bootOf(t, "S"); r.Outcome != bootcheck.Primary {
		t.Fatalf("S lost the primary role: %+v", r)
	}
	// The same with the promoted S's service address not up (only its own
	// address is): nothing answers ARP, so P asks the peer, which holds
	// the primary role at a newer generation. P refuses for that reason.
	hwB := nodeBySet(t, labStatus(t), "S")
	if err := exec.Command("ip", "-n", labName+"-hw-b", "addr", "del", "192.0.2.10/24", "dev", hwB.NICs[0].Name).Run(); err != nil {
		t.Fatalf("taking 192.0.2.10 off S's NIC: %v", err)
	}
	reboot("a")
	expectSafe("older primary generation, newer primary's address down", "the peer node-s holds the primary role at generation 2, newer than this disk set's 1")
	if r := bootOf(t, "P"); len(r.Probes) == 0 || !strings.Contains(probeSummary(r), "peer") {
		t.Fatalf("P's refusal lacks the peer's evidence: %+v", r.Probes)
	}
	figure(t, "bootcheck wall time: P (with probe) %s; S (no probe) %s", msList(pTimes), msList(sTimes))
}

// TestBootSwapTen swaps the disk sets ten times in a row, each round
// checked like TestBootcheck's, and prints bootcheck's wall times.
func TestBootSwapTen(t *testing.T) {
	requireLab(t)
	pairedLab(t)
	var pTimes, sTimes []float64
	for round := 1; round <= 10; round++ {
		p, s := swapAndCheck(t, round)
		pTimes, sTimes = append(pTimes, p), append(sTimes, s)
	}
	sort.Float64s(pTimes)
	sort.Float64s(sTimes)
	figure(t, "bootcheck wall time over 10 swaps: primary (decision + ARP probe + peer hello) median %.1f ms, max %.1f ms; secondary (no probe) median %.1f ms, max %.1f ms",
		pTimes[len(pTimes)/2], pTimes[len(pTimes)-1], sTimes[len(sTimes)/2], sTimes[len(sTimes)-1])
}

func msList(l []float64) string {
	var s []string
	for _, x := range l {
		s = append(s, fmt.Sprintf("%.1f ms", x))
	}
	return strings.Join(s, ", ")
}
