package bootcheck

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
)

// fakeNet stands in for the links, the ARP socket and the peer agent.
type fakeNet struct {
	mu sync.Mutex
	// per NIC: who answers ARP (nil: nobody), or the error of the probe
	// or of setting the link up.
	holder  map[string]string
	arpErr  map[string]error
	linkErr map[string]error
	// the peer's answer
	claim    *PeerClaim
	helloErr error
	// arpWaitsHello makes each ARP probe wait (within its window) until the
	// hello was sent: it proves the two run together.
	arpWaitsHello bool
	// helloBlocks makes the hello wait until its context ends.
	helloBlocks bool

	helloSent chan struct{}
	once      sync.Once
	added     []string // "nic cidr"
	deleted   []string
	helloAt   time.Time
	arpEnded  map[string]time.Time
}

func newFakeNet() *fakeNet {
	return &fakeNet{holder: map[string]string{}, arpErr: map[string]error{}, linkErr: map[string]error{},
		helloSent: make(chan struct{}), arpEnded: map[string]time.Time{}}
}

// install replaces probeNet for the test.
func (f *fakeNet) install(t *testing.T) {
	old := probeNet
	t.Cleanup(func() { probeNet = old })
	probeNet = netOps{
		linkUp: func(nic string) error { return f.linkErr[nic] },
		arp: func(ctx context.Context, nic string, ips []net.IP, window time.Duration) (net.IP, net.HardwareAddr, error) {
			defer func() { f.mu.Lock(); f.arpEnded[nic] = time.Now(); f.mu.Unlock() }()
			if err := f.arpErr[nic]; err != nil {
				return nil, nil, err
			}
			if f.arpWaitsHello {
				select {
				case <-f.helloSent:
				case <-time.After(window):
				}
			}
			if h := f.holder[nic]; h != "" {
				mac, _ := net.ParseMAC(h)
				return ips[0], mac, nil
			}
			if !f.arpWaitsHello {
				select {
				case <-time.After(window):
				case <-ctx.Done():
				}
			}
			return nil, nil, nil
		},
		addAddr: func(nic, cidr string) (bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.added = append(f.added, nic+" "+cidr)
			return true, nil
		},
		delAddr: func(nic, cidr string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.deleted = append(f.deleted, nic+" "+cidr)
			return nil
		},
		hello: func(ctx context.Context, node *pki.Node, peerName, addr string, self peer.NodeStatus, timeout time.Duration) (*PeerClaim, error) {
			f.mu.Lock()
			f.helloAt = time.Now()
			f.mu.Unlock()
			f.once.Do(func() { close(f.helloSent) })
			if f.helloBlocks {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return f.claim, f.helloErr
		},
	}
}

func (f *fakeNet) calls() (added, deleted []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.added), slices.Clone(f.deleted)
}

const (
	macB      = "02:00:00:00:0b:01" // machine B's NIC (the home of node-s)
	stranger  = "02:00:00:00:99:99"
	arpReason = "the primary's address 192.0.2.10 already answers (from " + macB + "): another node holds the primary role"
	genReason = "the peer node-s holds the primary role at generation 2, newer than this disk set's 1"
)

// probeRun runs probePrimary of a primary (generation 1) on machine A
// with the given addresses per NIC and the peer at peerAddr.
func probeRun(t *testing.T, addrs map[string][]string, nics []hwid.NIC, peerAddr string) (*runner, string, bool, error) {
	t.Helper()
	r := &runner{opt: Options{ProbeWindow: 300 * time.Millisecond, PeerTimeout: 500 * time.Millisecond},
		res: &Result{Network: &Plan{Addresses: addrs}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	in := Input{Stamp: stampOf("primary", hwA), Here: hwid.Identity{ID: hwA.ID, NICs: nics}, Machines: machines()}
	node := &pki.Node{Name: "node-p", Cluster: "c1"}
	cl := &stamp.Cluster{ClusterID: "c1", NodeName: "node-p", PeerName: "node-s", PeerAddress: peerAddr}
	why, refuse, err := r.probePrimary(context.Background(), in, node, cl)
	return r, why, refuse, err
}

func probeNamed(t *testing.T, res *Result, name string) Probe {
	t.Helper()
	var found []Probe
	for _, p := range res.Probes {
		if p.Name == name {
			found = append(found, p)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s probe, got %+v", name, res.Probes)
	}
	return found[0]
}

var office = map[string][]string{"enp1s0": {"192.0.2.10/24"}}

// TestProbeARPOnly: the address answers, the peer (reached over another
// route, so asked at the same time) is a secondary. The reason is the ARP
// one, unchanged; both pieces of evidence are in the probes.
func TestProbeARPOnly(t *testing.T) {
	f := newFakeNet()
	f.holder["enp1s0"] = macB
	f.claim = &PeerClaim{Name: "node-s", Role: "secondary", Generation: 1}
	f.arpWaitsHello = true
	f.install(t)
	r, why, refuse, err := probeRun(t, office, []hwid.NIC{nicA}, "198.51.100.20:7443")
	if err != nil || !refuse || why != arpReason {
		t.Fatalf("got refuse=%v %q (err %v); want %q", refuse, why, err, arpReason)
	}
	arp := probeNamed(t, r.res, "arp")
	if !arp.Answered || arp.Holder != macB || !strings.Contains(arp.Detail, "192.0.2.10 answered by "+macB+" (NIC eno1 of machine "+hwB.ID+", the home of node-s)") {
		t.Errorf("arp evidence %+v", arp)
	}
	p := probeNamed(t, r.res, "peer")
	if !p.Answered || p.Peer == nil || p.Peer.Role != "secondary" || p.Peer.Generation != 1 || p.Detail != "secondary, generation 1" {
		t.Errorf("peer evidence %+v", p)
	}
	// Concurrent: the hello went out while the ARP probe listened.
	if f.helloAt.IsZero() || !f.helloAt.Before(f.arpEnded["enp1s0"]) {
		t.Errorf("the hello (%v) did not run alongside the ARP probe (ended %v)", f.helloAt, f.arpEnded["enp1s0"])
	}
	if added, _ := f.calls(); len(added) != 0 {
		t.Errorf("addresses taken although one answers: %v", added)
	}
}

// TestProbeARPHeldPeerOnItsSubnet: the hello would have to go from the
// address that answers; it is not sent, and the evidence says why.
func TestProbeARPHeldPeerOnItsSubnet(t *testing.T) {
	f := newFakeNet()
	f.holder["enp1s0"] = macB
	f.claim = &PeerClaim{Name: "node-s", Role: "primary", Generation: 2}
	f.install(t)
	r, why, refuse, _ := probeRun(t, office, []hwid.NIC{nicA}, "192.0.2.20:7443")
	if !refuse || why != arpReason {
		t.Fatalf("got refuse=%v %q; want %q", refuse, why, arpReason)
	}
	if !f.helloAt.IsZero() {
		t.Error("the hello was sent from an address another node holds")
	}
	p := probeNamed(t, r.res, "peer")
	if p.Answered || !strings.Contains(p.Detail, "not asked") || !strings.Contains(p.Detail, "192.0.2.10 on enp1s0, which "+macB+" holds") {
		t.Errorf("peer evidence %+v", p)
	}
	if added, _ := f.calls(); len(added) != 0 {
		t.Errorf("addresses taken: %v", added)
	}
}

// TestProbePeerNewer: nobody answers ARP; the addresses are taken, the
// peer says primary at generation 2: refused with the generation, and the
// addresses are given back.
func TestProbePeerNewer(t *testing.T) {
	f := newFakeNet()
	f.claim = &PeerClaim{Name: "node-s", Role: "primary", Generation: 2}
	f.install(t)
	r, why, refuse, err := probeRun(t, office, []hwid.NIC{nicA}, "192.0.2.20:7443")
	if err != nil || !refuse || why != genReason {
		t.Fatalf("got refuse=%v %q (err %v); want %q", refuse, why, err, genReason)
	}
	arp := probeNamed(t, r.res, "arp")
	if arp.Answered || arp.Detail != "no answer within 300ms" {
		t.Errorf("arp evidence %+v", arp)
	}
	p := probeNamed(t, r.res, "peer")
	if !p.Answered || p.Peer == nil || p.Peer.Generation != 2 || p.Peer.Role != "primary" {
		t.Errorf("peer evidence %+v", p)
	}
	// The hello waited for the probe of the address it is sent from.
	if !f.helloAt.After(f.arpEnded["enp1s0"]) {
		t.Error("the hello went out before the ARP probe of its source address ended")
	}
	added, deleted := f.calls()
	if !slices.Equal(added, []string{"enp1s0 192.0.2.10/24"}) || !slices.Equal(deleted, added) {
		t.Errorf("taken %v, given back %v", added, deleted)
	}
}

// TestProbeBoth: the office address answers (a stray device) and the peer,
// over the peer link whose address is free, says primary at generation 2.
// The reason names the generation and keeps the ARP text.
func TestProbeBoth(t *testing.T) {
	f := newFakeNet()
	f.holder["enp1s0"] = stranger
	f.claim = &PeerClaim{Name: "node-s", Role: "primary", Generation: 2}
	f.install(t)
	link := hwid.NIC{Name: "enp2s0", MAC: "02:00:00:00:0a:02", Kind: "device"}
	addrs := map[string][]string{"enp1s0": {"192.0.2.10/24"}, "enp2s0": {"10.9.0.1/24"}}
	r, why, refuse, err := probeRun(t, addrs, []hwid.NIC{nicA, link}, "10.9.0.2:7443")
	want := genReason + ", and the primary's address 192.0.2.10 already answers (from " + stranger + "): another node holds the primary role"
	if err != nil || !refuse || why != want {
		t.Fatalf("got refuse=%v %q (err %v); want %q", refuse, why, err, want)
	}
	if len(r.res.Probes) != 3 || r.res.Probes[0].Name != "arp" || r.res.Probes[1].Name != "arp" || r.res.Probes[2].Name != "peer" {
		t.Fatalf("probes %+v", r.res.Probes)
	}
	if p := r.res.Probes[0]; !p.Answered || p.Holder != stranger || !strings.Contains(p.Detail, "not a NIC of a known machine") {
		t.Errorf("office arp %+v", p)
	}
	if p := r.res.Probes[1]; p.Answered || !strings.Contains(p.Target, "10.9.0.1 on enp2s0") {
		t.Errorf("peer link arp %+v", p)
	}
	if p := r.res.Probes[2]; !p.Answered || p.Peer.Generation != 2 {
		t.Errorf("peer %+v", p)
	}
	added, deleted := f.calls()
	if !slices.Equal(added, []string{"enp2s0 10.9.0.1/24"}) || !slices.Equal(deleted, added) {
		t.Errorf("taken %v (only the peer link's), given back %v", added, deleted)
	}
}

// TestProbeError: an ARP socket error is not "nobody answered": it is in
// the evidence as an error and a warning, and the check fails open (the
// peer is still asked).
func TestProbeError(t *testing.T) {
	f := newFakeNet()
	f.arpErr["enp1s0"] = errors.New("ARP probe on enp1s0: packet socket: operation not permitted")
	f.claim = &PeerClaim{Name: "node-s", Role: "secondary", Generation: 1}
	f.install(t)
	r, why, refuse, err := probeRun(t, office, []hwid.NIC{nicA}, "192.0.2.20:7443")
	if refuse || why != "" {
		t.Fatalf("refused on an error: %q", why)
	}
	if err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Errorf("the probe's error is not returned (the stage shows it): %v", err)
	}
	arp := probeNamed(t, r.res, "arp")
	if arp.Answered || !strings.Contains(arp.Error, "packet socket: operation not permitted") || !strings.HasPrefix(arp.Detail, "could not be made: ") {
		t.Errorf("arp evidence %+v", arp)
	}
	if len(r.res.Warnings) != 1 || !strings.Contains(r.res.Warnings[0], "could not be made") || !strings.Contains(r.res.Warnings[0], "192.0.2.10 on enp1s0") {
		t.Errorf("warnings %v", r.res.Warnings)
	}
	if p := probeNamed(t, r.res, "peer"); !p.Answered {
		t.Errorf("the peer was not asked after the failed ARP check: %+v", p)
	}
	// A netlink error (the link cannot be set up) is the same.
	f = newFakeNet()
	f.linkErr["enp1s0"] = errors.New("netlink: set enp1s0 up: no such device")
	f.install(t)
	r, _, refuse, err = probeRun(t, office, []hwid.NIC{nicA}, "192.0.2.20:7443")
	if arp := probeNamed(t, r.res, "arp"); refuse || err == nil || !strings.Contains(arp.Error, "no such device") {
		t.Errorf("netlink error: refuse=%v err=%v evidence %+v", refuse, err, arp)
	}
}

// TestProbeErrorInResult: the whole run keeps the error in bootcheck.json
// (what `sentry bootcheck explain` prints) and in the probe stage.
func TestProbeErrorInResult(t *testing.T) {
	f := newFixture(t)
	stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), stampOf("primary", hwA))
	WriteMachines(f.machines, machines())
	fn := newFakeNet()
	fn.arpErr["enp1s0"] = errors.New("ARP probe on enp1s0: bind: no such device")
	fn.install(t)
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, ProbeWindow: 50 * time.Millisecond,
		Identify: func() (hwid.Identity, error) { return hwA, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Primary {
		t.Fatalf("outcome %s (%s): an error fails open", res.Outcome, res.Reason)
	}
	var decoded Result
	b, _ := os.ReadFile(filepath.Join(f.paths.RunDir, ResultName))
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	arp := probeNamed(t, &decoded, "arp")
	if !strings.Contains(arp.Error, "bind: no such device") {
		t.Errorf("result file's arp probe %+v", arp)
	}
	var st *Stage
	for i := range decoded.Stages {
		if decoded.Stages[i].Name == "probe" {
			st = &decoded.Stages[i]
		}
	}
	if st == nil || !strings.Contains(st.Error, "bind: no such device") {
		t.Errorf("probe stage %+v", st)
	}
}

// TestBudgetIdentify: a stage that hangs (the hardware identification,
// made slow through the Identify hook) ends in a safe-mode decision naming
// it, written before the budget's caller would be killed; the late run
// writes nothing after that.
func TestBudgetIdentify(t *testing.T) {
	f := newFixture(t)
	stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), stampOf("primary", hwA))
	WriteMachines(f.machines, machines())
	os.MkdirAll(f.paths.RunDir, 0o755)
	os.WriteFile(filepath.Join(f.paths.RunDir, RoleName), []byte("primary\n"), 0o644)
	release := make(chan struct{})
	finished := make(chan *Result, 1)
	runFinished = func(r *Result) { finished <- r }
	t.Cleanup(func() { runFinished = nil })
	t0 := time.Now()
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true, Budget: 200 * time.Millisecond,
		Identify: func() (hwid.Identity, error) { <-release; return hwA, nil }})
	took := time.Since(t0)
	if err != nil {
		t.Fatal(err)
	}
	if took > 2*time.Second {
		t.Fatalf("Run took %s with a budget of 200ms", took)
	}
	const want = "the boot check did not finish within 200ms: it was still in stage identify-hardware after "
	if res.Outcome != SafeMode || !strings.HasPrefix(res.Reason, want) {
		t.Fatalf("result %s %q, want safe mode with %q", res.Outcome, res.Reason, want)
	}
	if n := len(res.Stages); n != 2 || res.Stages[0].Name != "read-stamp" || res.Stages[1].Name != "identify-hardware" || res.Stages[1].Error == "" {
		t.Fatalf("stages %+v", res.Stages)
	}
	if res.DiskSet != "d-primary" {
		t.Errorf("the stamp read before the budget ran out is not in the evidence: %+v", res)
	}
	check := func(when string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(f.paths.RunDir, SafeName))
		if err != nil || !strings.HasPrefix(string(b), want) {
			t.Fatalf("%s: safe marker %q %v", when, b, err)
		}
		if _, err := os.Stat(filepath.Join(f.paths.RunDir, RoleName)); err == nil {
			t.Fatalf("%s: role marker present", when)
		}
		last, err := f.paths.Last()
		if err != nil || last.ID != res.ID || last.Outcome != SafeMode {
			t.Fatalf("%s: result file %+v %v", when, last, err)
		}
	}
	check("at the budget")
	// The stage ends late: its run must not overwrite the decision.
	close(release)
	select {
	case late := <-finished:
		if late.Outcome != Primary {
			t.Fatalf("the late run decided %s", late.Outcome)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late run did not end")
	}
	check("after the late run")
	if _, err := os.Stat(filepath.Join(f.state, LastName)); err == nil {
		t.Error("the late run recorded this boot as the last good one")
	}
}

// TestBudgetProbe: the budget runs out in the probe (a peer that never
// answers, with windows longer than the budget): safe mode naming the
// probe, the address taken for the hello is given back, and the safe
// network (no address) is written.
func TestBudgetProbe(t *testing.T) {
	f := newFixture(t)
	stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), stampOf("primary", hwA))
	WriteMachines(f.machines, machines())
	os.WriteFile(filepath.Join(f.state, stamp.ClusterFile), []byte("schema_version = 1\ncluster_id = \"c1\"\nnode_name = \"node-p\"\npeer_name = \"node-s\"\npeer_address = \"192.0.2.20:7443\"\n"), 0o600)
	writePKI(t, f.state, "c1", "node-p")
	fn := newFakeNet()
	fn.helloBlocks = true
	fn.install(t)
	finished := make(chan *Result, 1)
	runFinished = func(r *Result) { finished <- r }
	t.Cleanup(func() { runFinished = nil })
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, ProbeWindow: 50 * time.Millisecond, PeerTimeout: 10 * time.Second,
		Budget: 400 * time.Millisecond, Identify: func() (hwid.Identity, error) { return hwA, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != SafeMode || !strings.HasPrefix(res.Reason, "the boot check did not finish within 400ms: it was still in stage probe after ") {
		t.Fatalf("result %s %q", res.Outcome, res.Reason)
	}
	added, deleted := fn.calls()
	if !slices.Equal(added, []string{"enp1s0 192.0.2.10/24"}) || !slices.Equal(deleted, added) {
		t.Errorf("taken %v, given back %v", added, deleted)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "the decision was primary") }) {
		t.Errorf("warnings %v", res.Warnings)
	}
	nf, _ := filepath.Glob(filepath.Join(f.paths.RunNetworkDir, "*"))
	if len(nf) != 1 || !strings.Contains(nf[0], "safe") {
		t.Fatalf("network files %v", nf)
	}
	select {
	case <-finished: // the hello's context was cancelled with the budget
	case <-time.After(5 * time.Second):
		t.Fatal("the late run did not end when the budget cancelled it")
	}
	if _, err := os.Stat(filepath.Join(f.paths.RunDir, RoleName)); err == nil {
		t.Fatal("role marker after the budget")
	}
}

// writePKI makes a cluster CA and a node certificate in state/pki.
func writePKI(t *testing.T, state, cluster, name string) {
	t.Helper()
	ca, err := pki.NewCA(cluster, "office", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.SignKey(key, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Save(filepath.Join(state, "pki"), ca.Cert, ca.Key, cert, key); err != nil {
		t.Fatal(err)
	}
}

// TestForeignClusterState: a stamp of one cluster with a cluster state of
// another is safe mode naming both ids and both files (and not something
// adopt can lift).
func TestForeignClusterState(t *testing.T) {
	f := newFixture(t)
	stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), stampOf("primary", hwA))
	WriteMachines(f.machines, machines())
	if err := stamp.WriteCluster(filepath.Join(f.state, stamp.ClusterFile), &stamp.Cluster{ClusterID: "c2", NodeName: "node-p"}); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true,
		Identify: func() (hwid.Identity, error) { return hwC, nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := "the disk stamp " + filepath.Join(f.state, stamp.StampFile) + " is of cluster c1, but the cluster state " +
		filepath.Join(f.state, stamp.ClusterFile) + " is of cluster c2"
	if res.Outcome != SafeMode || res.Reason != want || res.UnknownMachine {
		t.Fatalf("result %s %q unknown=%v; want %q", res.Outcome, res.Reason, res.UnknownMachine, want)
	}
	// The same cluster in both: the decision goes on (here: unknown machine).
	stamp.WriteCluster(filepath.Join(f.state, stamp.ClusterFile), &stamp.Cluster{ClusterID: "c1", NodeName: "node-p"})
	res, _ = Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true,
		Identify: func() (hwid.Identity, error) { return hwC, nil }})
	if !res.UnknownMachine || strings.Contains(res.Reason, "cluster state") {
		t.Fatalf("matching cluster state: %+v", res)
	}
}
