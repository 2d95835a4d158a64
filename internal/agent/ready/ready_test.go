package ready

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
)

type recorder struct {
	mu  sync.Mutex
	evs []string
}

func (r *recorder) event(kind, node, msg string, _ map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, kind+" "+node+" "+msg)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.evs...)
}

// emptyOpts read nothing of the machine: a fixture tree with no arrays,
// no disks and no network configuration.
func emptyOpts(t *testing.T) Options {
	dir := t.TempDir()
	return Options{Mdstat: filepath.Join(dir, "no-mdstat"), Root: dir, MountInfo: filepath.Join(dir, "no-mountinfo"), NetRoot: dir}
}

// oneCheck is a registry whose verdict the test sets.
func oneCheck(state *readiness.State) *readiness.Registry {
	r := &readiness.Registry{}
	r.Register(readiness.Check{Name: "peer", Run: func(c *readiness.Ctx) readiness.Finding {
		return readiness.Finding{State: *state, Reason: "the peer has not answered for 3m"}
	}})
	return r
}

func TestEventsOnChangeOnly(t *testing.T) {
	rec := &recorder{}
	state := readiness.Pass
	o := emptyOpts(t)
	o.Registry = oneCheck(&state)
	gathered := 0
	r := New(Deps{Gather: func() *readiness.Input { gathered++; return &readiness.Input{Now: time.Now()} },
		Event: rec.event, Node: func() string { return "node-p" }}, o)
	if _, ok := r.Result(); ok {
		t.Fatal("a result before any evaluation")
	}
	r.Evaluate()
	r.Evaluate()
	state = readiness.Fail
	r.Evaluate()
	r.Evaluate()
	state = readiness.Stale
	r.Evaluate()
	state = readiness.Pass
	r.Evaluate()
	want := []string{
		"ready-changed node-p READY",
		"ready-changed node-p NOT READY: peer: the peer has not answered for 3m",
		"ready-changed node-p UNKNOWN: peer: the peer has not answered for 3m",
		"ready-changed node-p READY",
	}
	if got := rec.list(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res, ok := r.Result(); !ok || res.Verdict != readiness.Ready || gathered != 6 {
		t.Errorf("last %v %v, gathered %d", res.Verdict, ok, gathered)
	}
}

func TestKickEvaluates(t *testing.T) {
	rec := &recorder{}
	state := readiness.Pass
	o := emptyOpts(t)
	o.Registry = oneCheck(&state)
	o.Interval = time.Hour // only Kick evaluates
	var mu sync.Mutex
	n := 0
	r := New(Deps{Gather: func() *readiness.Input {
		mu.Lock()
		defer mu.Unlock()
		n++
		return &readiness.Input{Now: time.Now()}
	}, Event: rec.event}, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	r.Kick()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := r.Result(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no evaluation after Kick")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if f, _, _ := r.Local(); f == nil || f.At.IsZero() {
		t.Errorf("the local facts were not read at start: %+v", f)
	}
	var nilReady *Ready
	nilReady.Kick() // a hand-built agent has none
}

func TestNilGatherIsNotPaired(t *testing.T) {
	r := New(Deps{Node: func() string { return "node-p" }}, emptyOpts(t))
	res := r.Evaluate()
	if res.Verdict == readiness.Ready {
		t.Fatalf("an unpaired node is READY: %+v", res)
	}
}

func TestModulesKept(t *testing.T) {
	r := New(Deps{Modules: func() map[string]string { return map[string]string{"web-nginx": "1.0.0"} }}, emptyOpts(t))
	r.Evaluate()
	if _, m, at := r.Local(); m["web-nginx"] != "1.0.0" || at.IsZero() {
		t.Errorf("modules %v at %v", m, at)
	}
}

// fixtureRoot is internal/disks' captured server (sda, sdb in md0/md1,
// nvme0n1 outside) with device nodes: GRUB on sda only.
func fixtureRoot(t *testing.T) string {
	root := t.TempDir()
	srv, err := filepath.Abs("../../disks/testdata/server")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"sys", "run"} {
		if err := os.Symlink(filepath.Join(srv, d), filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	mbr := func(grub bool) []byte {
		b := make([]byte, 512)
		if grub {
			copy(b[0x180:], "GRUB \x00Geom\x00Hard Disk\x00Read\x00 Error")
		}
		b[510], b[511] = 0x55, 0xaa
		return b
	}
	os.WriteFile(filepath.Join(root, "dev/sda"), mbr(true), 0o644)
	os.WriteFile(filepath.Join(root, "dev/sdb"), mbr(false), 0o644)
	os.WriteFile(filepath.Join(root, "dev/nvme0n1"), mbr(false), 0o644)
	return root
}

func TestFactsFromFixtures(t *testing.T) {
	root := fixtureRoot(t)
	net := t.TempDir()
	os.MkdirAll(filepath.Join(net, "etc/network"), 0o755)
	os.WriteFile(filepath.Join(net, "etc/network/interfaces"), []byte("auto lo\niface lo inet loopback\nauto eno1\niface eno1 inet static\n  address 10.0.0.2/24\n"), 0o644)
	o := Options{Mdstat: "../../mdstat/testdata/degraded.mdstat", Root: root, MountInfo: filepath.Join(root, "none"), NetRoot: net}
	r := New(Deps{PeerNICs: func() []hwid.NIC { return []hwid.NIC{{Name: "enp1s0", MAC: "52:54:00:00:00:01"}} }}, o)
	r.RefreshFacts()
	f, _, _ := r.Local()
	if f == nil || f.RAIDError != "" || len(f.RAID) != 2 || f.LoaderErr != "" || f.Loader == nil || f.Network == nil {
		t.Fatalf("facts: %+v", f)
	}
	if err := (&peer.NodeStatus{Name: "node-p", Facts: f}).Validate(); err != nil {
		t.Fatalf("the facts do not cross: %v", err)
	}
	if f.Loader.Mode != "bios" || !f.Loader.GRUB["/dev/sda"] || f.Loader.GRUB["/dev/sdb"] || len(f.Loader.GRUB) != 2 {
		t.Errorf("loader: %+v", f.Loader)
	}
	if f.Network.Covered || f.Network.Method != "ifupdown" || !strings.Contains(f.Network.Detail, "eno1") {
		t.Errorf("network: %+v", f.Network)
	}
	// Judged: RAID degraded, GRUB missing on sdb, ifupdown not covered.
	self := NodeOf(&peer.NodeStatus{Name: "node-p", Role: "primary", Facts: f}, time.Now())
	in := &readiness.Input{Now: time.Now(), Primary: self, Secondary: &readiness.Node{Name: "node-s", Role: "secondary"}}
	res := readiness.Default().Evaluate(in)
	states := map[string]readiness.State{}
	reasons := map[string]string{}
	for _, x := range res.Findings {
		states[x.Check], reasons[x.Check] = x.State, x.Reason
	}
	if states["raid"] != readiness.Fail || !strings.Contains(reasons["raid"], "md1 raid1 [1/2] degraded, failed: sdb2") {
		t.Errorf("raid: %s %s", states["raid"], reasons["raid"])
	}
	if states["boot.loader"] != readiness.Fail || !strings.Contains(reasons["boot.loader"], "GRUB is not on /dev/sdb") {
		t.Errorf("boot.loader: %s %s", states["boot.loader"], reasons["boot.loader"])
	}
	if states["boot.network"] != readiness.Fail {
		t.Errorf("boot.network: %s %s", states["boot.network"], reasons["boot.network"])
	}
}

// TestFactsContainer: a container sees the host's disks in /sys but not
// in its own /dev, and /proc/mdstat may be missing: no arrays, no loader
// of its own (n/a, as in the lab).
func TestFactsContainer(t *testing.T) {
	root := fixtureRoot(t)
	os.RemoveAll(filepath.Join(root, "dev"))
	f := readFacts(Options{Mdstat: filepath.Join(root, "missing"), Root: root, MountInfo: filepath.Join(root, "none"), NetRoot: root}.withDefaults(), nil, time.Now())
	if f.RAIDError != "" || len(f.RAID) != 0 || f.Loader == nil || f.Loader.Mode != "none" {
		t.Fatalf("%+v %+v", f, f.Loader)
	}
	n := NodeOf(&peer.NodeStatus{Name: "node-p", Facts: f}, time.Now())
	in := &readiness.Input{Now: time.Now(), Primary: n, Secondary: n}
	for _, x := range readiness.Default().Evaluate(in).Findings {
		if (x.Check == "raid" || x.Check == "boot.loader") && x.State != readiness.NA {
			t.Errorf("%s: %s %s", x.Check, x.State, x.Reason)
		}
	}
}

func TestRebuildAndUnreadESP(t *testing.T) {
	f := &peer.Facts{At: time.Now(), Loader: &peer.Loader{Mode: "uefi", ESPs: []peer.ESP{{Device: "/dev/sda1", Fallback: true}, {Device: "/dev/sdb1", Err: "not mounted"}}}}
	// Only the arrays: readFacts with the defaults would read the host's
	// /sys and /etc.
	raid, rerr := readRAID(Options{Mdstat: "../../mdstat/testdata/recovery.mdstat"})
	if len(raid) == 0 || raid[0].Action != "recover" || rerr != "" {
		t.Errorf("recovery: %+v %q", raid, rerr)
	}
	n := NodeOf(&peer.NodeStatus{Name: "node-p", Facts: f}, time.Now())
	if n.Loaders != nil {
		t.Errorf("an ESP that could not be read makes the loaders known: %+v", n.Loaders)
	}
}

func TestMountedESP(t *testing.T) {
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte(`22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
30 22 8:1 / /boot/efi rw,relatime shared:7 - vfat /dev/sda1 rw,fmask=0077
31 22 8:17 /sub /mnt/x\040y rw - vfat /dev/sdb1 rw
32 22 8:33 / /mnt/a\040b rw - vfat /dev/sdc1 rw
`), 0o644)
	for dev, want := range map[string]string{"/dev/sda1": "/boot/efi", "/dev/sdc1": "/mnt/a b"} {
		if got, ok := mountedAt(mi, dev); !ok || got != want {
			t.Errorf("%s: %q %v, want %q", dev, got, ok, want)
		}
	}
	if _, ok := mountedAt(mi, "/dev/sdb1"); ok {
		t.Error("a bind mount of a subfolder counts as the ESP")
	}
	m := espMounter{root: dir, mountinfo: mi}
	if d, done, err := m.Mount("/dev/sda1"); err != nil || d != filepath.Join(dir, "boot/efi") {
		t.Errorf("%q %v", d, err)
	} else {
		done()
	}
	if _, _, err := m.Mount("/dev/sdd1"); err == nil {
		t.Error("an unmounted ESP under a fixture root was mounted")
	}
}

func TestFreshness(t *testing.T) {
	if f := Freshness(time.Minute, 10*time.Second, 30*time.Second); f != readiness.DefaultFreshness {
		t.Errorf("default schedule: %s", f)
	}
	if f := Freshness(5*time.Minute, 0, 30*time.Second); f != 10*time.Minute+30*time.Second {
		t.Errorf("a 5-minute round: %s", f)
	}
}

// TestNetworkWaitsForPeerNICs: ifupdown names a NIC; until the peer's
// NICs are known the coverage is unknown (not a fault), and a Kick after
// they arrive reads it again.
func TestNetworkWaitsForPeerNICs(t *testing.T) {
	net := t.TempDir()
	os.MkdirAll(filepath.Join(net, "etc/network"), 0o755)
	os.WriteFile(filepath.Join(net, "etc/network/interfaces"), []byte("auto eno1\niface eno1 inet dhcp\n"), 0o644)
	o := emptyOpts(t)
	o.NetRoot, o.Interval = net, time.Hour
	var mu sync.Mutex
	var nics []hwid.NIC
	r := New(Deps{PeerNICs: func() []hwid.NIC { mu.Lock(); defer mu.Unlock(); return nics }}, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wait := func(what string, ok func(*peer.Facts) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if f, _, _ := r.Local(); f != nil && ok(f) {
				return
			}
			if time.Now().After(deadline) {
				f, _, _ := r.Local()
				t.Fatalf("%s: %+v", what, f)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("unknown without the peer's NICs", func(f *peer.Facts) bool {
		return f.Network == nil && strings.Contains(f.NetErr, "NICs are not known yet")
	})
	mu.Lock()
	nics = []hwid.NIC{{Name: "eno1", MAC: "52:54:00:00:00:02"}}
	mu.Unlock()
	r.Kick()
	wait("covered once they are known", func(f *peer.Facts) bool { return f.Network != nil && f.Network.Covered })
}

// TestStoredVerdictAndAlerts: the verdict is saved on a change; a new
// component loaded from the save shows it (not judged), and judging the
// same verdict again is no change (no event); the alert path sees one
// observation per verifier round (Rounded), none between rounds, with the
// verdict as the phase and the reasons as the message; the verdict travels
// in brief for the hello.
func TestStoredVerdictAndAlerts(t *testing.T) {
	var saved []byte
	saves := 0
	type obs struct {
		ok         bool
		phase, msg string
	}
	var alerts []obs
	state := readiness.Fail
	o := emptyOpts(t)
	o.Registry = oneCheck(&state)
	deps := func(rec *recorder) Deps {
		return Deps{Gather: func() *readiness.Input { return &readiness.Input{Now: time.Now()} },
			Event: rec.event, Node: func() string { return "node-p" },
			Save:  func(b []byte) error { saved = append([]byte(nil), b...); saves++; return nil },
			Load:  func() ([]byte, error) { return saved, nil },
			Alert: func(ok bool, phase, msg string, at time.Time) { alerts = append(alerts, obs{ok, phase, msg}) }}
	}
	rec := &recorder{}
	r := New(deps(rec), o)
	r.Evaluate()
	r.Evaluate() // same verdict: saved once, no alert (no round)
	if saves != 1 || len(alerts) != 0 || len(rec.list()) != 1 {
		t.Fatalf("after two judgements: %d saves, alerts %v, events %q", saves, alerts, rec.list())
	}
	r.Rounded() // kicks; the next evaluation is observed
	r.Evaluate()
	r.Evaluate()
	if len(alerts) != 1 || alerts[0].ok || alerts[0].phase != "NOT READY" || alerts[0].msg != "peer: the peer has not answered for 3m" {
		t.Fatalf("alerts after one round: %+v", alerts)
	}
	if s := r.Summary(); s == nil || s.Verdict != "NOT READY" || len(s.Reasons) != 1 || s.At.IsZero() {
		t.Fatalf("summary: %+v", s)
	}

	// A restart: the stored verdict is the last one until judged again.
	rec2 := &recorder{}
	r2 := New(deps(rec2), o)
	r2.load()
	if res, ok := r2.Result(); !ok || res.Verdict != readiness.NotReady || r2.Judged() {
		t.Fatalf("after a restart: %v %v judged=%v", res.Verdict, ok, r2.Judged())
	}
	r2.Evaluate()
	if len(rec2.list()) != 0 || !r2.Judged() {
		t.Fatalf("the same verdict after a restart is recorded as a change: %q", rec2.list())
	}
	state = readiness.Pass
	r2.Rounded()
	r2.Evaluate()
	if ev := rec2.list(); len(ev) != 1 || !strings.Contains(ev[0], "READY") {
		t.Fatalf("events after the repair: %q", ev)
	}
	if last := alerts[len(alerts)-1]; !last.ok || last.msg != "" {
		t.Fatalf("alert after the repair: %+v", last)
	}
	if !strings.Contains(string(saved), `"READY"`) {
		t.Fatalf("saved after the repair: %s", saved)
	}
}
