package readiness

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func boolp(b bool) *bool { return &b }

// good is a pair where every check passes (or does not apply).
func good() *Input {
	now := t0
	recent := now.Add(-20 * time.Second)
	off := 30 * time.Millisecond
	probes := func() []Probe {
		return []Probe{{Name: "web", OK: true, At: recent}, {Name: "mail", OK: true, At: recent}}
	}
	node := func(name, role string) *Node {
		return &Node{
			Name: name, Role: role, Generation: 2, StatusAt: recent,
			ConfigHead: "aaaaaaaaaaaaaaaa", ConfigApplied: "aaaaaaaaaaaaaaaa", ConfigAt: recent,
			Probes: probes(), Expected: []string{"web", "mail"},
			Modules: map[string]string{"web": "1.2.0", "mail": "1.0.0"}, ModulesAt: recent,
			InventoryAt: now.Add(-5 * time.Minute),
			RAID:        &RAIDFacts{At: recent, Arrays: []Array{{Name: "md0", Level: "raid1", Members: 2, Up: 2}}},
			Disks:       []DiskHealth{{Device: "/dev/sda", Serial: "S1", Passed: boolp(true)}}, DisksAt: recent,
			Loaders: &LoaderFacts{At: recent, Mode: "uefi", ESPs: []ESP{{Device: "/dev/sda1", Fallback: true, Digest: "x"}, {Device: "/dev/sdb1", Fallback: true, Digest: "x"}}},
			Network: &NetFacts{At: recent, Method: "ifupdown", Covered: true},
			Backup:  &BackupFacts{At: now.Add(-30 * time.Hour), Repo: "/srv/restic", Snapshot: "a1b2c3d4"},
		}
	}
	return &Input{
		Now: now, Self: "node-p",
		Primary: node("node-p", "primary"), Secondary: node("node-s", "secondary"),
		PeerReachable: true, PeerContact: recent, ClockOffset: &off,
		Packages: PackageFacts{At: now.Add(-5 * time.Minute)},
		Compat: []CompatFacts{
			{DiskSet: "node-p", Machine: "b", Boots: "yes", At: now.Add(-5 * time.Minute)},
			{DiskSet: "node-s", Machine: "a", Boots: "yes", At: now.Add(-5 * time.Minute)},
		},
	}
}

func TestGoodPairIsReady(t *testing.T) {
	r := Default().Evaluate(good())
	if r.Verdict != Ready {
		t.Fatalf("verdict %s, reasons %v\n%+v", r.Verdict, r.Reasons(), r.Findings)
	}
	for _, f := range r.Findings {
		if f.State != Pass {
			t.Errorf("%s: %s (%s)", f.Check, f.State, f.Reason)
		}
	}
}

// faults: each breaks one thing of a good pair; the verdict and the one
// blocking check are what an operator must see.
var faults = []struct {
	name    string
	check   string
	verdict Verdict
	reason  string // a part of the reason
	mutate  func(in *Input)
}{
	{"peer gone", "peer", NotReady, "has not answered for 10m: connection refused", func(in *Input) {
		in.PeerReachable = false
		in.PeerContact = in.Now.Add(-10 * time.Minute)
		in.PeerError = "connection refused"
		// what the peer said last is as old as the contact
		in.Secondary.StatusAt, in.Secondary.ConfigAt = in.PeerContact, in.PeerContact
	}},
	{"two primaries", "stamps", NotReady, "not one primary and one secondary", func(in *Input) { in.Secondary.Role = "primary" }},
	{"generations differ", "stamps", NotReady, "node-p has 2, node-s has 1", func(in *Input) { in.Secondary.Generation = 1 }},
	{"corrupt stamp", "stamps", NotReady, "stamp cannot be read: bad checksum", func(in *Input) { in.Secondary.StampError = "bad checksum" }},
	{"safe mode", "stamps", NotReady, "held in safe mode", func(in *Input) { in.Secondary.SafeMode = "peer holds primary" }},
	{"S behind", "sync.applied", NotReady, "node-s applied bbbbbbbbbbbb, node-p's head is aaaaaaaaaaaa", func(in *Input) {
		in.Secondary.ConfigApplied = "bbbbbbbbbbbbbbbb"
		in.Primary.ConfigHeadAt = in.Now.Add(-10 * time.Minute)
	}},
	{"failed apply", "sync.failed", NotReady, "could not apply cccccccccccc: nginx -t refused", func(in *Input) {
		in.Secondary.ConfigFailed = "cccccccccccccccc"
		in.Secondary.ConfigError = "nginx -t refused"
	}},
	{"the head failed to apply", "sync.failed", NotReady, "could not apply aaaaaaaaaaaa: nginx -t refused", func(in *Input) {
		in.Secondary.ConfigApplied = "bbbbbbbbbbbbbbbb" // the one before
		in.Secondary.ConfigFailed = in.Primary.ConfigHead
		in.Secondary.ConfigError = "nginx -t refused"
		in.Primary.ConfigHeadAt = in.Now.Add(-10 * time.Minute)
	}},
	{"drift on S", "sync.drift", NotReady, "2 tracked path(s) edited locally on node-s", func(in *Input) { in.Secondary.ConfigDrift = 2 }},
	{"service red on S", "verify.green", NotReady, "web on node-s: http: 502", func(in *Input) {
		in.Secondary.Probes[0].OK = false
		in.Secondary.Probes[0].Message = "http: 502"
	}},
	{"results stale", "verify.green", Unknown, "results too old", func(in *Input) { in.Primary.Probes[1].At = in.Now.Add(-time.Hour) }},
	{"probe missing on S", "verify.coverage", NotReady, "mail on node-s", func(in *Input) { in.Secondary.Probes = in.Secondary.Probes[:1] }},
	// Not "no schedule runs" every probe: S has said nothing yet.
	{"no results yet from S (its agent just started)", "verify.green", Unknown, "node-s: no results", func(in *Input) { in.Secondary.Probes = nil }},
	{"module versions differ", "modules", NotReady, "web 1.2.0 on node-p, 1.1.0 on node-s", func(in *Input) { in.Secondary.Modules["web"] = "1.1.0" }},
	{"awaiting approval", "modules", NotReady, "awaits approval of write /etc/x", func(in *Input) { in.Secondary.BoundaryPending = []string{"write /etc/x"} }},
	{"package on one node", "packages", NotReady, "package htop (3.2.2-2 / -)", func(in *Input) {
		in.Packages.Diffs = []PackageDiff{{Kind: "package", Name: "htop", Primary: "3.2.2-2"}}
	}},
	{"stale inventory", "inventory.fresh", NotReady, "node-s's measured 2h ago", func(in *Input) { in.Secondary.InventoryAt = in.Now.Add(-2 * time.Hour) }},
	{"driver missing", "boot.compat", NotReady, "node-p's disk set on b: no module for 8086:1533", func(in *Input) {
		in.Compat[0].Boots = "no"
		in.Compat[0].Because = []string{"no module for 8086:1533"}
	}},
	{"no fallback loader", "boot.loader", NotReady, "/dev/sdb1 has no EFI/BOOT/BOOTX64.EFI", func(in *Input) { in.Secondary.Loaders.ESPs[1].Fallback = false }},
	{"ESPs out of step", "boot.loader", NotReady, "partitions of the RAID members differ", func(in *Input) { in.Primary.Loaders.ESPs[1].Digest = "y" }},
	{"GRUB on one member", "boot.loader", NotReady, "GRUB is not on /dev/sdb", func(in *Input) {
		in.Primary.Loaders = &LoaderFacts{At: in.Now, Mode: "bios", GRUBDisks: map[string]bool{"/dev/sda": true, "/dev/sdb": false}}
	}},
	{"network not covered", "boot.network", NotReady, "NetworkManager is not covered", func(in *Input) {
		in.Secondary.Network = &NetFacts{At: in.Now, Method: "NetworkManager", Detail: "connections in /etc/NetworkManager"}
	}},
	{"degraded RAID", "raid", NotReady, "node-s md0 raid1 [1/2] degraded, failed: sdb1", func(in *Input) {
		in.Secondary.RAID.Arrays[0].Up = 1
		in.Secondary.RAID.Arrays[0].Failed = []string{"sdb1"}
	}},
	{"rebuilding RAID", "raid", NotReady, "recover 12.5%", func(in *Input) {
		in.Primary.RAID.Arrays[0].Action, in.Primary.RAID.Arrays[0].Progress = "recover", "12.5%"
	}},
	{"SMART failed", "disks", NotReady, "/dev/sda (serial S1): SMART says FAILED", func(in *Input) { in.Primary.Disks[0].Passed = boolp(false) }},
	{"restore failed", "backup", NotReady, "the restore test of /srv/restic at", func(in *Input) { in.Primary.Backup.RestoreErr = "3 files differ" }},
	{"restore failed (reason)", "backup", NotReady, "failed: 3 files differ", func(in *Input) { in.Primary.Backup.RestoreErr = "3 files differ" }},
	{"clock offset", "clock", NotReady, "the clocks differ by 5s", func(in *Input) { d := 5 * time.Second; in.ClockOffset = &d }},
	{"clock not measured", "clock", Unknown, "not measured", func(in *Input) { in.ClockOffset = nil }},
}

func TestEachFaultBlocksWithItsCheck(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			in := good()
			f.mutate(in)
			r := Default().Evaluate(in)
			if r.Verdict != f.verdict {
				t.Fatalf("verdict %s, want %s; reasons %v", r.Verdict, f.verdict, r.Reasons())
			}
			var blocking []Finding
			for _, x := range r.Findings {
				if x.Blocking() {
					blocking = append(blocking, x)
				}
			}
			if len(blocking) != 1 || blocking[0].Check != f.check {
				t.Fatalf("blocking %v, want only %s", r.Reasons(), f.check)
			}
			if !strings.Contains(blocking[0].Reason, f.reason) {
				t.Errorf("reason %q, want it to say %q", blocking[0].Reason, f.reason)
			}
			if r.Findings[0].Check != f.check {
				t.Errorf("first finding %s, want the blocking one first", r.Findings[0].Check)
			}
			if blocking[0].Fix == "" {
				t.Errorf("%s blocks without a command to explain or fix it", f.check)
			}
		})
	}
}

// TestEveryCheckHasAFault keeps the table above complete: a new check
// needs a fault of its own.
func TestEveryCheckHasAFault(t *testing.T) {
	covered := map[string]bool{}
	for _, f := range faults {
		covered[f.check] = true
	}
	for _, c := range Default().Checks() {
		if !covered[c.Name] {
			t.Errorf("check %s has no fault in the table", c.Name)
		}
		if c.Doc == "" {
			t.Errorf("check %s has no doc line", c.Name)
		}
	}
}

func TestNotApplicableBlocksNothing(t *testing.T) {
	in := good()
	for _, n := range []*Node{in.Primary, in.Secondary} {
		n.RAID = &RAIDFacts{At: in.Now}                    // no arrays (the lab)
		n.Disks = nil                                      // no SMART
		n.Backup = nil                                     // none configured
		n.Loaders = &LoaderFacts{At: in.Now, Mode: "none"} // containers
	}
	r := Default().Evaluate(in)
	if r.Verdict != Ready {
		t.Fatalf("verdict %s: %v", r.Verdict, r.Reasons())
	}
	for _, name := range []string{"raid", "disks", "backup", "boot.loader"} {
		if f := find(r, name); f.State != NA {
			t.Errorf("%s: %s (%s), want n/a", name, f.State, f.Reason)
		}
	}
}

func TestScheduledCheckIsNotAFault(t *testing.T) {
	in := good()
	in.Primary.RAID.Arrays[0].Action, in.Primary.RAID.Arrays[0].Progress = "check", "40.0%"
	r := Default().Evaluate(in)
	if f := find(r, "raid"); f.State != Pass || !strings.Contains(f.Evidence[0].Value, "scheduled, not a fault") {
		t.Fatalf("raid: %+v", f)
	}
}

func TestReloadDisturbedIsNotAFault(t *testing.T) {
	in := good()
	in.Secondary.Probes[1].OK = false
	in.Secondary.Probes[1].Message = "imap login: no answer within 4s"
	in.Secondary.ReloadDisturbed = []string{"mail"}
	r := Default().Evaluate(in)
	if r.Verdict != Ready {
		t.Fatalf("verdict %s: %v", r.Verdict, r.Reasons())
	}
	if f := find(r, "verify.green"); !strings.Contains(f.Reason, "reload the sync made: mail on node-s") {
		t.Errorf("verify.green: %q", f.Reason)
	}
}

func TestApplyOnItsWayIsNotAFault(t *testing.T) {
	in := good()
	in.Secondary.ConfigApplied = "bbbbbbbbbbbbbbbb"
	in.Primary.ConfigHeadAt = in.Now.Add(-3 * time.Second)
	r := Default().Evaluate(in)
	if f := find(r, "sync.applied"); f.State != Pass || !strings.Contains(f.Reason, "is applying") {
		t.Fatalf("sync.applied: %+v", f)
	}
}

func TestDeclaredPackageDifferenceIsAllowed(t *testing.T) {
	in := good()
	in.Packages.Diffs = []PackageDiff{{Kind: "firmware", Name: "firmware-bnx2", Primary: "1", Allowed: true, Reason: "only machine A has that NIC"}}
	r := Default().Evaluate(in)
	if f := find(r, "packages"); f.State != Pass || !strings.Contains(f.Reason, "1 difference(s) declared allowed") {
		t.Fatalf("packages: %+v", f)
	}
}

func TestUnpairedIsUnknown(t *testing.T) {
	r := Default().Evaluate(&Input{Now: t0})
	if r.Verdict != NotReady { // the peer has never answered: that is a fault
		t.Fatalf("verdict %s", r.Verdict)
	}
	if f := find(r, "stamps"); f.State != Stale || f.Reason != "this node is not paired" {
		t.Errorf("stamps: %+v", f)
	}
}

func TestEvidenceAgeAndOrder(t *testing.T) {
	in := good()
	in.Secondary.ConfigDrift = 1
	in.ClockOffset = nil // unknown: after the failing block
	r := Default().Evaluate(in)
	if r.Findings[0].Check != "sync.drift" || r.Findings[1].Check != "clock" {
		t.Fatalf("order: %s, %s", r.Findings[0].Check, r.Findings[1].Check)
	}
	if age := r.Findings[0].Evidence[0].Age; age != 20*time.Second {
		t.Errorf("evidence age %s, want 20s", age)
	}
	if r.Key() != "NOT READY|sync.drift=fail" || r.Findings[1].Blocking() {
		t.Errorf("key %q", r.Key())
	}
}

func TestPanickingCheckIsUnknown(t *testing.T) {
	r := &Registry{}
	r.Register(Check{Name: "boom", Doc: "x", Run: func(*Ctx) Finding { panic("nil map") }})
	res := r.Evaluate(&Input{Now: t0})
	if res.Verdict != Unknown || res.Findings[0].Reason != "the check failed: nil map" {
		t.Fatalf("%+v", res)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a second check of one name was taken")
		}
	}()
	r := &Registry{}
	c := Check{Name: "x", Run: func(*Ctx) Finding { return pass("") }}
	r.Register(c)
	r.Register(c)
}

func find(r Result, name string) Finding {
	for _, f := range r.Findings {
		if f.Check == name {
			return f
		}
	}
	return Finding{}
}

// TestPackageOnlyOnSecondaryFix: the parity apply does not touch a package
// only on the secondary, so the finding does not send the operator there
// for it; with a package P has and S lacks too, it names both fixes.
func TestPackageOnlyOnSecondaryFix(t *testing.T) {
	in := good()
	in.Packages.Diffs = []PackageDiff{{Kind: "package", Name: "hello", Secondary: "1.0"}}
	f := find(Default().Evaluate(in), "packages")
	if f.State != Fail || strings.HasPrefix(f.Fix, "sentry parity apply") || !strings.Contains(f.Fix, "install it on the primary, remove it from the secondary") {
		t.Fatalf("only on S: %+v", f)
	}
	in.Packages.Diffs = append(in.Packages.Diffs, PackageDiff{Kind: "package", Name: "htop", Primary: "3.2.2-2"})
	f = find(Default().Evaluate(in), "packages")
	if f.State != Fail || !strings.HasPrefix(f.Fix, "sentry parity apply; for what is only on the secondary: install it on the primary") {
		t.Fatalf("on P and only on S: %+v", f)
	}
	in.Packages.Diffs = in.Packages.Diffs[1:]
	if f = find(Default().Evaluate(in), "packages"); f.Fix != "sentry parity apply" {
		t.Fatalf("only on P: %+v", f)
	}
}
