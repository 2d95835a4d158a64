package bootcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/stamp"
)

var hwD = hwid.Identity{ID: "mac:02:00:00:00:0d:01", Source: "mac", NICs: []hwid.NIC{{Name: "ens4", MAC: "02:00:00:00:0d:01", Kind: "device"}}}

// withMachine is machines() plus extra profiles (as the primary's agent
// adds the machine it runs on).
func withMachine(extra ...Machine) *Machines {
	m := machines()
	for _, e := range extra {
		m.Put(e)
	}
	return m
}

func adoptedList(ms ...Machine) *Machines { return &Machines{Machine: ms} }

// TestDecideAdopted pins the reason, the failover flag and the machines
// named for every way a machine can stand in for another: the decision's
// reason, the FAILOVER line and the failover event must name the same
// machines (issue 13, defect 7).
func TestDecideAdopted(t *testing.T) {
	const (
		a, b, c, d = "mac:02:00:00:00:0a:01", "mac:02:00:00:00:0b:01", "mac:02:00:00:00:0c:01", "mac:02:00:00:00:0d:01"
	)
	cases := []struct {
		name     string
		in       Input
		outcome  string
		failover bool
		home     bool
		replaces string
		homeOf   string
		reason   string
	}{
		{
			name: "adopted in place of its home",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC, Machines: machines(),
				Adopted: adoptedList(Machine{ID: c, Replaces: a, HomeOf: "node-p"})},
			outcome: Primary, home: true, replaces: a, homeOf: "node-p",
			reason: "the primary disk set on the machine adopted as its home: " + c + ", in place of " + a + " (adopted on this disk set)",
		},
		{
			// The defect: the primary's agent, running on C, put C into
			// machines.toml without a home; the next boot took that
			// profile, said "the home machine of another node" and
			// recorded a failover naming A as home.
			name: "adopted in place of its home, and in machines.toml without a home",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC,
				Machines: withMachine(Machine{ID: c, Source: "mac", NICs: hwC.NICs}),
				Adopted:  adoptedList(Machine{ID: c, Replaces: a, HomeOf: "node-p"})},
			outcome: Primary, home: true, replaces: a, homeOf: "node-p",
			reason: "the primary disk set on the machine adopted as its home: " + c + ", in place of " + a + " (adopted on this disk set)",
		},
		{
			name: "adopted in place of the other node's home",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC,
				Machines: withMachine(Machine{ID: c, Source: "mac", NICs: hwC.NICs}),
				Adopted:  adoptedList(Machine{ID: c, Replaces: b, HomeOf: "node-s"})},
			outcome: Primary, failover: true, replaces: b, homeOf: "node-s",
			reason: "the primary disk set on the home machine of node-s: " + c + ", adopted in place of " + b + " (adopted on this disk set)",
		},
		{
			name: "the secondary adopted in place of its home",
			in: Input{Stamp: stampOf("secondary", hwB), Node: "node-s", Here: hwC, Machines: machines(),
				Adopted: adoptedList(Machine{ID: c, Replaces: b, HomeOf: "node-s"})},
			outcome: Secondary, home: true, replaces: b, homeOf: "node-s",
			reason: "the secondary disk set on the machine adopted as its home: " + c + ", in place of " + b + " (adopted on this disk set)",
		},
		{
			name: "adopted in place of a machine adopted in place of its home",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwD, Machines: machines(),
				Adopted: adoptedList(Machine{ID: c, Replaces: a, HomeOf: "node-p"}, Machine{ID: d, Replaces: c, HomeOf: "node-p"})},
			outcome: Primary, home: true, replaces: c, homeOf: "node-p",
			reason: "the primary disk set on the machine adopted as its home: " + d + ", in place of " + c + " (adopted on this disk set)",
		},
		{
			name: "adopted in place of a machine the cluster no longer lists",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC, Machines: &Machines{},
				Adopted: adoptedList(Machine{ID: c, Replaces: b, HomeOf: "node-s"})},
			outcome: Primary, failover: true, replaces: b, homeOf: "node-s",
			reason: "the primary disk set on the home machine of node-s: " + c + ", adopted in place of " + b + " (adopted on this disk set)",
		},
		{
			name: "the replaced machine's profile is newer than the adoption's record",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC, Machines: machines(),
				Adopted: adoptedList(Machine{ID: c, Replaces: b, HomeOf: "somebody"})},
			outcome: Primary, failover: true, replaces: b, homeOf: "node-s",
			reason: "the primary disk set on the home machine of node-s: " + c + ", adopted in place of " + b + " (adopted on this disk set)",
		},
		{
			name: "adopted in place of a machine of no known node",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC, Machines: &Machines{},
				Adopted: adoptedList(Machine{ID: c, Replaces: d})},
			outcome: Primary, failover: true, replaces: d,
			reason: "the primary disk set on machine " + c + ", adopted in place of " + d + ", which is no known node's home (adopted on this disk set)",
		},
		{
			name: "a cluster machine that is no node's home",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC,
				Machines: withMachine(Machine{ID: c, Source: "mac", NICs: hwC.NICs})},
			outcome: Primary, failover: true,
			reason: "the primary disk set on machine " + c + ", one of this cluster's machines but no node's home",
		},
		{
			name: "an adoption the primary's agent recorded in machines.toml, on the other disk set",
			in: Input{Stamp: stampOf("secondary", hwB), Node: "node-s", Here: hwC,
				Machines: withMachine(Machine{ID: c, Source: "mac", NICs: hwC.NICs, Replaces: a, HomeOf: "node-p"})},
			outcome: Secondary, replaces: a, homeOf: "node-p",
			reason: "the secondary disk set on the home machine of node-p: " + c + ", adopted in place of " + a + " (adopted, in this cluster's machines)",
		},
		{
			name: "the same adoption in machines.toml, on the disk set that made it",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC,
				Machines: withMachine(Machine{ID: c, Source: "mac", NICs: hwC.NICs, Replaces: a, HomeOf: "node-p"})},
			outcome: Primary, home: true, replaces: a, homeOf: "node-p",
			reason: "the primary disk set on the machine adopted as its home: " + c + ", in place of " + a + " (adopted, in this cluster's machines)",
		},
		{
			name: "a machine the cluster lists as this node's home",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwC,
				Machines: withMachine(Machine{ID: c, Source: "mac", NICs: hwC.NICs, HomeOf: "node-p"})},
			outcome: Primary, home: true, homeOf: "node-p",
			reason: "the primary disk set on its home machine " + c + " (the home of node-p in this cluster's machines)",
		},
		{
			name:    "the other machine, as before",
			in:      Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwB, Machines: machines()},
			outcome: Primary, failover: true, homeOf: "node-s",
			reason: "the primary disk set on the home machine of node-s (one of this cluster's machines)",
		},
		{
			name: "machines.toml unreadable, this machine in no list",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwB,
				MachinesErr: errors.New("/etc/sentry/cluster/machines.toml:3:1: expected a key")},
			outcome: SafeMode,
			reason: "this machine (" + b + ") is not among the machines this disk set could read (known: " + a +
				"), and the machine lists are unreadable: /etc/sentry/cluster/machines.toml:3:1: expected a key: restore that file (the other disk set holds a copy of machines.toml), or remove it and adopt this machine",
		},
		{
			name: "adopted list unreadable, machine known from machines.toml",
			in: Input{Stamp: stampOf("primary", hwA), Node: "node-p", Here: hwB, Machines: machines(),
				AdoptedErr: errors.New("/var/lib/sentry/adopted-machines.toml:2:1: bad")},
			outcome: Primary, failover: true, homeOf: "node-s",
			reason: "the primary disk set on the home machine of node-s (one of this cluster's machines)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.in)
			if got.Outcome != tc.outcome || got.Failover != tc.failover || got.Home != tc.home || got.Replaces != tc.replaces || got.HomeOf != tc.homeOf {
				t.Errorf("got %s failover=%v home=%v replaces=%q home_of=%q; want %s failover=%v home=%v replaces=%q home_of=%q",
					got.Outcome, got.Failover, got.Home, got.Replaces, got.HomeOf, tc.outcome, tc.failover, tc.home, tc.replaces, tc.homeOf)
			}
			if got.Reason != tc.reason {
				t.Errorf("reason\n got: %s\nwant: %s", got.Reason, tc.reason)
			}
			if strings.Contains(got.Reason, "another node") {
				t.Errorf("the reason names no machine's owner: %s", got.Reason)
			}
			if got.UnknownMachine {
				t.Errorf("UnknownMachine set: adopt cannot lift this")
			}
		})
	}
}

// state writes a disk set's stamp and cluster state into the fixture.
func (f fixture) writeDiskSet(t *testing.T, st *stamp.Stamp, node, peer string) {
	t.Helper()
	if err := stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), st); err != nil {
		t.Fatal(err)
	}
	if err := stamp.WriteCluster(filepath.Join(f.state, stamp.ClusterFile), &stamp.Cluster{ClusterID: st.ClusterID,
		NodeName: node, PeerName: peer, PeerAddress: "192.0.2.99:7443"}); err != nil {
		t.Fatal(err)
	}
}

var msRE = regexp.MustCompile(` \([0-9]+ ms\)`)

// bootOn runs the boot check on machine hw (no network) and returns the
// result and the console's lines, without the time.
func bootOn(t *testing.T, f fixture, hw hwid.Identity) (*Result, []string) {
	t.Helper()
	var con bytes.Buffer
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true, Console: &con,
		Identify: func() (hwid.Identity, error) { return hw, nil }})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(con.String()), "\n") {
		if strings.Contains(l, "warning:") {
			continue // the fixture's disks lack a driver of every machine
		}
		lines = append(lines, msRE.ReplaceAllString(l, ""))
	}
	return res, lines
}

// TestRunAdoptedMessagesAgree is the defect's scenario on fixture trees:
// P adopted on machine C (in place of its home A, or of S's home B),
// machines.toml listing C without a home (as the primary's agent writes
// it), then the next boot on C. The console's decision, its FAILOVER line
// and the failover event's text name the same machines.
func TestRunAdoptedMessagesAgree(t *testing.T) {
	// The home machine's (A's) NIC configuration, mapped to C's NIC.
	const netLine = "sentry bootcheck: network: 10-installer.network: enp1s0 (02:00:00:00:0a:01) -> ens3 (02:00:00:00:0c:01)"
	cases := []struct {
		name     string
		replaces hwid.Identity
		homeOf   string
		console  []string
		event    string
	}{
		{
			name: "in place of its home", replaces: hwA, homeOf: "node-p",
			console: []string{
				"sentry bootcheck: PRIMARY: the primary disk set on the machine adopted as its home: " + hwC.ID + ", in place of " + hwA.ID + " (adopted on this disk set)",
				netLine,
			},
		},
		{
			name: "in place of the other node's home", replaces: hwB, homeOf: "node-s",
			console: []string{
				"sentry bootcheck: PRIMARY: the primary disk set on the home machine of node-s: " + hwC.ID + ", adopted in place of " + hwB.ID + " (adopted on this disk set)",
				"sentry bootcheck: FAILOVER: the primary disk set runs on machine " + hwC.ID + " (adopted in place of " + hwB.ID + ", the home of node-s; home " + hwA.ID + ")",
				netLine,
			},
			event: "failover: the primary disk set d-primary (generation 1) runs on machine " + hwC.ID + " (adopted in place of " + hwB.ID + ", the home of node-s), its home is " + hwA.ID,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.writeDiskSet(t, stampOf("primary", hwA), "node-p", "node-s")
			if err := WriteMachines(f.machines, withMachine(Machine{ID: hwC.ID, Source: "mac", NICs: hwC.NICs})); err != nil {
				t.Fatal(err)
			}
			if err := WriteMachines(filepath.Join(f.state, AdoptedName), adoptedList(Machine{ID: hwC.ID, Source: "mac", NICs: hwC.NICs,
				Replaces: tc.replaces.ID, HomeOf: tc.homeOf, Adopted: time.Now()})); err != nil {
				t.Fatal(err)
			}
			res, lines := bootOn(t, f, hwC)
			if res.Outcome != Primary || res.Failover != (tc.event != "") || res.Replaces != tc.replaces.ID || res.HomeOf != tc.homeOf {
				t.Fatalf("result %s failover=%v replaces=%q home_of=%q", res.Outcome, res.Failover, res.Replaces, res.HomeOf)
			}
			if res.Network == nil || len(res.Network.Addresses[nicC.Name]) != 1 {
				t.Fatalf("network plan %+v", res.Network)
			}
			if strings.Join(lines, "\n") != strings.Join(tc.console, "\n") {
				t.Errorf("console\n got: %s\nwant: %s", strings.Join(lines, "\n      "), strings.Join(tc.console, "\n      "))
			}
			if res.Failover {
				if got := res.FailoverText(); got != tc.event {
					t.Errorf("failover event\n got: %s\nwant: %s", got, tc.event)
				}
			}
			// The result file carries the same (explain, the agent).
			var saved Result
			b, _ := os.ReadFile(filepath.Join(f.paths.RunDir, ResultName))
			if err := json.Unmarshal(b, &saved); err != nil || saved.Replaces != tc.replaces.ID || saved.HomeOf != tc.homeOf || saved.Reason != res.Reason {
				t.Errorf("result file: %v %+v", err, saved)
			}
		})
	}
}

// TestRunUnreadableMachines: a machine list that cannot be read is a
// warning on every boot, and a safe mode that names the file (not "run
// adopt") when it might have known this machine.
func TestRunUnreadableMachines(t *testing.T) {
	f := newFixture(t)
	f.writeDiskSet(t, stampOf("primary", hwA), "node-p", "node-s")
	os.MkdirAll(filepath.Dir(f.machines), 0o755)
	os.WriteFile(f.machines, []byte("schema_version = 1\n[[machine]\n"), 0o644)

	res, _ := bootOn(t, f, hwA)
	if res.Outcome != Primary || !res.Home {
		t.Fatalf("at home: %s (%s)", res.Outcome, res.Reason)
	}
	if !hasWarning(res, "a machine list could not be read ("+f.machines+":3:") {
		t.Errorf("at home: warnings %q", res.Warnings)
	}
	if s := stageNamed(res, "read-profiles"); s == nil || !strings.Contains(s.Error, f.machines) {
		t.Errorf("read-profiles stage %+v", s)
	}

	res, _ = bootOn(t, f, hwB)
	if res.Outcome != SafeMode || res.UnknownMachine || !strings.Contains(res.Reason, "the machine lists are unreadable: "+f.machines+":3:") {
		t.Fatalf("on B: %s unknown=%v (%s)", res.Outcome, res.UnknownMachine, res.Reason)
	}

	// The adopted list unreadable, the machine known from machines.toml:
	// the boot goes on and says what it could not read.
	WriteMachines(f.machines, machines())
	adopted := filepath.Join(f.state, AdoptedName)
	os.WriteFile(adopted, []byte("schema_version = 1\n[[machine]]\nid = \n"), 0o600)
	res, _ = bootOn(t, f, hwB)
	if res.Outcome != Primary || !res.Failover || !hasWarning(res, "a machine list could not be read ("+adopted+":3:") {
		t.Fatalf("adopted list unreadable: %s (%s) %q", res.Outcome, res.Reason, res.Warnings)
	}
}

func hasWarning(r *Result, sub string) bool {
	for _, w := range r.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

func stageNamed(r *Result, name string) *Stage {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return nil
}

// TestAdopt pins what adoption accepts, what it refuses and why, and that
// the boot decision after it says what the adoption said.
func TestAdopt(t *testing.T) {
	when := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	const corrupt = "schema_version = 1\n[[machine]\n"
	cases := []struct {
		name     string
		stamp    *stamp.Stamp
		node     string
		here     hwid.Identity
		replaces string
		peer     *PeerSeen
		force    bool
		// lastOn is the machine these disks last booted on ("" none).
		lastOn string
		// machines is machines.toml's content ("" none; corrupt text).
		machines string
		adopted  string // the adopted list's content before ("" none)
		// want: the error (exact, "" none) or the adoption.
		err      string
		inUse    bool
		wantRepl string
		wantHome bool
		homeOf   string
		text     string
		warning  string
		// then: the next boot on here.
		boot     string
		failover bool
	}{
		{
			name: "in place of its home, the peer on its own", stamp: stampOf("primary", hwA), node: "node-p", here: hwC,
			peer: &PeerSeen{Hardware: hwB.ID, When: when}, machines: "profiles",
			wantRepl: hwA.ID, wantHome: true, homeOf: "node-p",
			text: "machine " + hwC.ID + " adopted as the home of disk set d-primary, in place of " + hwA.ID + ": the primary disk set runs there as at home",
			boot: "the primary disk set on the machine adopted as its home: " + hwC.ID + ", in place of " + hwA.ID + " (adopted on this disk set)",
		},
		{
			// The defect's scenario: after a swap S runs on A (P's home),
			// P ran on B and went into C. The default would make C claim
			// the machine S runs on: refused, naming B instead.
			name: "in place of its home while the peer runs there", stamp: stampOf("primary", hwA), node: "node-p", here: hwC,
			peer: &PeerSeen{Hardware: hwA.ID, When: when}, machines: "profiles", lastOn: hwB.ID, inUse: true,
			err: "cannot adopt " + hwC.ID + " in place of " + hwA.ID + ": node-s was running on " + hwA.ID +
				" when this node last heard from it (2026-11-23T09:30:00Z), so that machine is in use, not replaced; name the machine this one takes the place of: --replaces " +
				hwB.ID + " (the home of node-s; these disks last ran there); if node-s has left " + hwA.ID + " since, adopt with --force",
		},
		{
			name: "in place of the other node's home, which it left", stamp: stampOf("primary", hwA), node: "node-p", here: hwC, replaces: hwB.ID,
			peer: &PeerSeen{Hardware: hwA.ID, When: when}, machines: "profiles", lastOn: hwB.ID,
			wantRepl: hwB.ID, homeOf: "node-s",
			text: "machine " + hwC.ID + " adopted on disk set d-primary in place of " + hwB.ID + ", the home of node-s: the primary disk set runs there as on " +
				hwB.ID + " (its home stays " + hwA.ID + "), a failover",
			boot:     "the primary disk set on the home machine of node-s: " + hwC.ID + ", adopted in place of " + hwB.ID + " (adopted on this disk set)",
			failover: true,
		},
		{
			name: "in place of the other node's home while it runs there", stamp: stampOf("primary", hwA), node: "node-p", here: hwC, replaces: hwB.ID,
			peer: &PeerSeen{Name: "node-s", Hardware: hwB.ID, When: when}, machines: "profiles", inUse: true,
			err: "cannot adopt " + hwC.ID + " in place of " + hwB.ID + ": node-s was running on " + hwB.ID +
				" when this node last heard from it (2026-11-23T09:30:00Z), so that machine is in use, not replaced; name the machine this one takes the place of: --replaces " +
				hwA.ID + " (the home of these disks); if node-s has left " + hwB.ID + " since, adopt with --force",
		},
		{
			name: "forced over the peer's word", stamp: stampOf("primary", hwA), node: "node-p", here: hwC, force: true,
			peer: &PeerSeen{Hardware: hwA.ID, When: when}, machines: "profiles",
			wantRepl: hwA.ID, wantHome: true, homeOf: "node-p",
			text:    "machine " + hwC.ID + " adopted as the home of disk set d-primary, in place of " + hwA.ID + ": the primary disk set runs there as at home",
			warning: "adopted in place of " + hwA.ID + " although node-s was running on it when this node last heard from it (2026-11-23T09:30:00Z) (--force)",
			boot:    "the primary disk set on the machine adopted as its home: " + hwC.ID + ", in place of " + hwA.ID + " (adopted on this disk set)",
		},
		{
			name: "the secondary, in place of its home", stamp: stampOf("secondary", hwB), node: "node-s", here: hwC,
			peer: &PeerSeen{Hardware: hwA.ID, When: when}, machines: "profiles",
			wantRepl: hwB.ID, wantHome: true, homeOf: "node-s",
			text: "machine " + hwC.ID + " adopted as the home of disk set d-secondary, in place of " + hwB.ID + ": the secondary disk set runs there as at home",
			boot: "the secondary disk set on the machine adopted as its home: " + hwC.ID + ", in place of " + hwB.ID + " (adopted on this disk set)",
		},
		{
			name: "never heard from the peer, no profiles yet", stamp: stampOf("primary", hwA), node: "node-p", here: hwC,
			wantRepl: hwA.ID, wantHome: true, homeOf: "node-p",
			text: "machine " + hwC.ID + " adopted as the home of disk set d-primary, in place of " + hwA.ID + ": the primary disk set runs there as at home",
			boot: "the primary disk set on the machine adopted as its home: " + hwC.ID + ", in place of " + hwA.ID + " (adopted on this disk set)",
		},
		{
			name: "in place of a machine adopted before", stamp: stampOf("primary", hwA), node: "node-p", here: hwD, replaces: hwC.ID,
			machines: "profiles", adopted: "c-for-a",
			wantRepl: hwC.ID, wantHome: true, homeOf: "node-p",
			text: "machine " + hwD.ID + " adopted as the home of disk set d-primary, in place of " + hwC.ID + ": the primary disk set runs there as at home",
			boot: "the primary disk set on the machine adopted as its home: " + hwD.ID + ", in place of " + hwC.ID + " (adopted on this disk set)",
		},
		{
			name: "in place of a machine nobody knows", stamp: stampOf("primary", hwA), node: "node-p", here: hwC, replaces: hwD.ID, machines: "profiles",
			err: "cannot adopt " + hwC.ID + " in place of " + hwD.ID + ": that is not one of this cluster's machines (known: " + hwA.ID + "; " + hwB.ID + ")",
		},
		{
			name: "on its own home", stamp: stampOf("primary", hwA), node: "node-p", here: hwA, machines: "profiles",
			err: "cannot adopt " + hwA.ID + ": it is already the home of disk set d-primary",
		},
		{
			name: "machines.toml unreadable", stamp: stampOf("primary", hwA), node: "node-p", here: hwC, machines: corrupt,
			err: "cannot adopt: this cluster's machine profiles could not be read: MACHINES:3:*: which machine this one replaces cannot be checked (nothing was changed; restore the file, the other disk set holds a copy)",
		},
		{
			name: "the adopted list unreadable", stamp: stampOf("primary", hwA), node: "node-p", here: hwC, machines: "profiles", adopted: corrupt,
			err: "cannot adopt: the machines adopted on this disk set could not be read: ADOPTED:3:* (nothing was changed)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.writeDiskSet(t, tc.stamp, tc.node, map[string]string{"node-p": "node-s", "node-s": "node-p"}[tc.node])
			switch tc.machines {
			case "":
			case "profiles":
				if err := WriteMachines(f.machines, machines()); err != nil {
					t.Fatal(err)
				}
			default:
				os.MkdirAll(filepath.Dir(f.machines), 0o755)
				os.WriteFile(f.machines, []byte(tc.machines), 0o644)
			}
			adopted := filepath.Join(f.state, AdoptedName)
			switch tc.adopted {
			case "":
			case "c-for-a":
				WriteMachines(adopted, adoptedList(Machine{ID: hwC.ID, NICs: hwC.NICs, Replaces: hwA.ID, HomeOf: "node-p"}))
			default:
				os.WriteFile(adopted, []byte(tc.adopted), 0o600)
			}
			before, _ := os.ReadFile(adopted)
			if tc.lastOn != "" {
				b, _ := json.Marshal(Result{Outcome: Primary, Hardware: tc.lastOn})
				os.WriteFile(filepath.Join(f.state, LastName), b, 0o644)
			}

			a, err := Adopt(AdoptInput{StateDir: f.state, MachinesFile: f.machines, Here: tc.here, Replaces: tc.replaces, Peer: tc.peer, Force: tc.force, Now: when})
			if tc.err != "" {
				want := strings.NewReplacer("MACHINES", f.machines, "ADOPTED", adopted).Replace(tc.err)
				// "*" stands for the TOML parser's own words.
				pre, post, wild := strings.Cut(want, "*")
				if err == nil || (!wild && err.Error() != want) || (wild && (!strings.HasPrefix(err.Error(), pre) || !strings.HasSuffix(err.Error(), post))) {
					t.Fatalf("error\n got: %v\nwant: %s", err, want)
				}
				if errors.Is(err, ErrMachineInUse) != tc.inUse {
					t.Errorf("errors.Is(ErrMachineInUse) = %v", !tc.inUse)
				}
				if after, _ := os.ReadFile(adopted); !bytes.Equal(before, after) {
					t.Errorf("a refused adoption changed %s:\n%s", adopted, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Replaces != tc.wantRepl || a.Home != tc.wantHome || a.HomeOf != tc.homeOf || a.Text != tc.text || a.Warning != tc.warning || a.File != adopted {
				t.Fatalf("adoption %+v\nwant replaces %s home %v home_of %s\ntext    %s\nwarning %s", a, tc.wantRepl, tc.wantHome, tc.homeOf, tc.text, tc.warning)
			}
			m, err := ReadMachines(adopted)
			if err != nil {
				t.Fatal(err)
			}
			rec, ok := m.Find(tc.here.ID)
			if !ok || rec.Replaces != tc.wantRepl || rec.HomeOf != tc.homeOf || !rec.Adopted.Equal(when) || len(rec.NICs) != 1 {
				t.Fatalf("record %+v", rec)
			}
			// The next boot says what the adoption said.
			res, _ := bootOn(t, f, tc.here)
			if res.Reason != tc.boot || res.Failover != tc.failover || res.Home != tc.wantHome || res.Replaces != tc.wantRepl || res.HomeOf != tc.homeOf {
				t.Fatalf("boot after adoption: %s failover=%v home=%v replaces=%q home_of=%q\n got: %s\nwant: %s",
					res.Outcome, res.Failover, res.Home, res.Replaces, res.HomeOf, res.Reason, tc.boot)
			}
		})
	}
}

// TestAdoptClusterStateUnreadable: the node's name comes from the cluster
// state; a cluster state that cannot be read stops the adoption, naming it.
func TestAdoptClusterStateUnreadable(t *testing.T) {
	f := newFixture(t)
	f.writeDiskSet(t, stampOf("primary", hwA), "node-p", "node-s")
	WriteMachines(f.machines, machines())
	cl := filepath.Join(f.state, stamp.ClusterFile)
	os.WriteFile(cl, []byte("schema_version = 1\nnode_name = \n"), 0o600)
	_, err := Adopt(AdoptInput{StateDir: f.state, MachinesFile: f.machines, Here: hwC})
	if err == nil || !strings.HasPrefix(err.Error(), "cannot adopt: "+cl+": line 2") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.state, AdoptedName)); err == nil {
		t.Fatal("adopted list written")
	}
}

// TestPutReplaces: a profile whose adoption changed is a change.
func TestPutReplaces(t *testing.T) {
	m := withMachine(Machine{ID: hwC.ID, NICs: hwC.NICs})
	if !m.Put(Machine{ID: hwC.ID, NICs: hwC.NICs, Replaces: hwA.ID}) {
		t.Error("a new Replaces was no change")
	}
	if m.Put(Machine{ID: hwC.ID, NICs: hwC.NICs, Replaces: hwA.ID, Adopted: time.Now()}) {
		t.Error("the Adopted time alone was a change")
	}
}

// TestMachinesFileOption: adopt and the boot decision read the machine
// profiles the caller names (the agent's cluster folder), the same file.
func TestMachinesFileOption(t *testing.T) {
	f := newFixture(t)
	f.writeDiskSet(t, stampOf("primary", hwA), "node-p", "node-s")
	other := filepath.Join(t.TempDir(), "cluster", "machines.toml")
	if err := WriteMachines(other, machines()); err != nil {
		t.Fatal(err)
	}
	// B is known only from the other file.
	if _, err := Adopt(AdoptInput{StateDir: f.state, MachinesFile: f.machines, Here: hwC, Replaces: hwB.ID}); err == nil {
		t.Fatal("adopted in place of a machine the default file does not know")
	}
	a, err := Adopt(AdoptInput{StateDir: f.state, MachinesFile: other, Here: hwC, Replaces: hwB.ID})
	if err != nil || a.HomeOf != "node-s" {
		t.Fatalf("adopt: %+v %v", a, err)
	}
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: other, Paths: f.paths, NoNetwork: true,
		Identify: func() (hwid.Identity, error) { return hwC, nil }})
	if err != nil || res.Outcome != Primary || !res.Failover || res.HomeOf != "node-s" || res.Network == nil {
		t.Fatalf("boot: %+v %v", res, err)
	}
}
