package machines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

const (
	machineA = "dmi:uuid=aaaaaaaa-0000-0000-0000-00000000000a"
	machineB = "dmi:uuid=bbbbbbbb-0000-0000-0000-00000000000b"
	machineC = "dmi:uuid=cccccccc-0000-0000-0000-00000000000c"
)

type event struct{ kind, node, msg string }

// fixture is the agent's side of the component: an identity, a stamp file
// and an event list, in a temp folder.
type fixture struct {
	t     *testing.T
	dir   string
	mu    sync.Mutex
	stamp *stamp.Stamp
	hw    hwid.Identity
	evs   []event
	m     *Machines
}

func newFixture(t *testing.T, st *stamp.Stamp, hw hwid.Identity, opts ...Option) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), stamp: st, hw: hw}
	d := Deps{
		Event: func(kind, node, msg string, _ map[string]string) {
			f.mu.Lock()
			f.evs = append(f.evs, event{kind, node, msg})
			f.mu.Unlock()
		},
		Self: func() Identity {
			f.mu.Lock()
			defer f.mu.Unlock()
			id := Identity{Node: "node-p", PeerName: "node-s"}
			if f.stamp != nil {
				s := *f.stamp
				id.Stamp = &s
			}
			return id
		},
		ChangeStamp: func(change func(*stamp.Stamp) (*stamp.Stamp, error)) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			var cur *stamp.Stamp
			if f.stamp != nil {
				c := *f.stamp
				cur = &c
			}
			st, err := change(cur)
			if err != nil || st == nil {
				return err
			}
			if err := stamp.WriteStamp(filepath.Join(f.dir, stamp.StampFile), st); err != nil {
				return err
			}
			f.stamp = st
			return nil
		},
		Hardware:   func() (hwid.Identity, error) { return f.hw, nil },
		HWOptions:  func() hwid.Options { return hwid.Options{} },
		StateDir:   func() string { return f.dir },
		PeerRecord: func(string) (store.PeerRecord, bool, error) { return store.PeerRecord{}, false, nil },
	}
	opts = append([]Option{WithMachinesFile(filepath.Join(f.dir, "cluster", "machines.toml")),
		WithNetworkDir(filepath.Join(f.dir, "network")),
		WithBootResult(func() (*bootcheck.Result, error) { return nil, os.ErrNotExist })}, opts...)
	f.m = New(d, opts...)
	return f
}

func (f *fixture) events(kind string) []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []event
	for _, e := range f.evs {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// Promote raised the generation past what the stamp can hold (or
// overflowed to 0); it refuses instead, and the stamp stays readable.
func TestPromoteRefusesOverflow(t *testing.T) {
	base := stamp.Stamp{ClusterID: "c1", ClusterName: "office", DiskSet: "d1", Role: stamp.RoleSecondary,
		Generation: 1, HomeHardware: machineB, Written: time.Now().UTC()}
	f := newFixture(t, nil, hwid.Identity{ID: machineB})
	file := filepath.Join(f.dir, stamp.StampFile)
	for _, other := range []uint64{1<<63 - 1, 1 << 62} {
		st := base
		st.OtherGeneration = other
		f.mu.Lock()
		f.stamp = &st
		f.mu.Unlock()
		res, err := f.m.Promote()
		if err == nil {
			t.Errorf("promote above generation %d: %+v, want a refusal", other, res)
		} else if !strings.Contains(err.Error(), "generation") {
			t.Errorf("promote above generation %d: %v", other, err)
		}
		if got, rerr := stamp.ReadStamp(file); rerr == nil && got.Role != stamp.RoleSecondary {
			t.Errorf("promote above generation %d wrote %+v", other, got)
		} else if rerr != nil && !strings.Contains(rerr.Error(), stamp.ErrMissing.Error()) {
			t.Errorf("promote above generation %d left an unreadable stamp: %v", other, rerr)
		}
	}
	// The usual case still works, above the peer's last heard generation.
	st := base
	st.OtherGeneration = 1
	f.mu.Lock()
	f.stamp = &st
	f.mu.Unlock()
	f.m.NotePeer(&peer.NodeStatus{Name: "node-s", Generation: 4})
	res, err := f.m.Promote()
	if err != nil || res.Generation != 5 || res.OldGeneration != 1 {
		t.Fatalf("promote: %+v %v", res, err)
	}
	if got, err := stamp.ReadStamp(file); err != nil || got.Role != stamp.RolePrimary || got.Generation != 5 {
		t.Fatalf("stamp after promote: %+v %v", got, err)
	}
	want := "promoted: disk set d1 is now the primary, generation 5 (was the secondary at 1)"
	if evs := f.events("promote"); len(evs) != 1 || evs[0].msg != want || evs[0].node != "node-p" {
		t.Errorf("promote events %+v", evs)
	}
	if _, err := f.m.Promote(); err == nil || err.Error() != "this disk set is already the primary (generation 5)" {
		t.Errorf("a second promote: %v", err)
	}
	f.mu.Lock()
	f.stamp = nil
	f.mu.Unlock()
	if _, err := f.m.Promote(); err == nil || err.Error() != "this disk set belongs to no cluster" {
		t.Errorf("promote without a cluster: %v", err)
	}
}

// The peer's claims about machines overwrote this node's own entry in
// machines.toml (and one whose home is this node).
func TestPeerClaimsKeepOwnMachines(t *testing.T) {
	own := []hwid.NIC{{Name: "eno1", MAC: "02:00:00:00:0a:01", Kind: "device"}}
	// P runs on its home machine A; C was P's home once (adopted away).
	f := newFixture(t, &stamp.Stamp{ClusterID: "c1", DiskSet: "d1", Role: stamp.RolePrimary, Generation: 1, HomeHardware: machineA},
		hwid.Identity{ID: machineA, Source: "dmi", NICs: own})
	file := f.m.MachinesFile()
	cNICs := []hwid.NIC{{Name: "eno1", MAC: "02:00:00:00:0c:01", Kind: "device"}}
	seed := &bootcheck.Machines{Machine: []bootcheck.Machine{{ID: machineC, Source: "dmi", NICs: cNICs, HomeOf: "node-p", Seen: time.Now().UTC()}}}
	if err := bootcheck.WriteMachines(file, seed); err != nil {
		t.Fatal(err)
	}
	forged := []hwid.NIC{{Name: "evil0", MAC: "02:66:66:66:66:66", Kind: "device"}}
	for _, claim := range []string{machineA, machineC} {
		f.m.NotePeer(&peer.NodeStatus{Name: "node-s", Hardware: claim, HomeHardware: claim, HardwareNICs: forged})
		f.m.Update()
		m, err := bootcheck.ReadMachines(file)
		if err != nil {
			t.Fatal(err)
		}
		mine, _ := m.Find(machineA)
		c, _ := m.Find(machineC)
		if mine == nil || mine.HomeOf != "node-p" || fmt.Sprint(mine.NICs) != fmt.Sprint(own) {
			t.Errorf("the peer claiming %s changed this node's own entry: %+v", claim, mine)
		}
		if c == nil || c.HomeOf != "node-p" || fmt.Sprint(c.NICs) != fmt.Sprint(cNICs) {
			t.Errorf("the peer claiming %s changed the entry of this node's home: %+v", claim, c)
		}
	}
	// The peer's word about its own machine is still taken, and Run takes
	// it by itself when the peer's machine changes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	f.m.NotePeer(&peer.NodeStatus{Name: "node-s", Hardware: machineB, HomeHardware: machineB, HardwareNICs: forged[:1]})
	for i := 0; ; i++ {
		m, _ := bootcheck.ReadMachines(file)
		if b, ok := m.Find(machineB); ok && b.HomeOf == "node-s" {
			break
		} else if i == 1000 {
			t.Fatalf("the peer's own machine: %+v", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Only a primary outside safe mode writes the machine profiles.
func TestUpdateOnlyPrimary(t *testing.T) {
	hw := hwid.Identity{ID: machineA, Source: "dmi", NICs: []hwid.NIC{{Name: "eno1", MAC: "02:00:00:00:0a:01", Kind: "device"}}}
	for _, tc := range []struct {
		name  string
		st    *stamp.Stamp
		ident error
		write bool
	}{
		{"no cluster", nil, nil, false},
		{"secondary", &stamp.Stamp{Role: stamp.RoleSecondary, HomeHardware: machineA}, nil, false},
		{"safe mode", &stamp.Stamp{Role: stamp.RolePrimary, HomeHardware: machineA}, errors.New("bad stamp"), false},
		{"primary", &stamp.Stamp{Role: stamp.RolePrimary, HomeHardware: machineA}, nil, true},
	} {
		f := newFixture(t, tc.st, hw)
		if tc.ident != nil {
			f.m.SetIdentityError(tc.ident)
		}
		f.m.Update()
		m, err := bootcheck.ReadMachines(f.m.MachinesFile())
		if got := err == nil; got != tc.write {
			t.Errorf("%s: written %v (%v), want %v", tc.name, got, err, tc.write)
			continue
		}
		if tc.write {
			if self, ok := m.Find(machineA); !ok || self.HomeOf != "node-p" {
				t.Errorf("%s: own entry %+v", tc.name, self)
			}
		}
	}
}

// The boot result is recorded as events once per boot, and sets the boot
// fields of the node's status; safe mode holds the role.
func TestLoadBoot(t *testing.T) {
	res := &bootcheck.Result{ID: "boot-1", Outcome: bootcheck.SafeMode, Reason: "unknown machine", UnknownMachine: true,
		Warnings: []string{"no driver for eth9"}}
	last := func() (*bootcheck.Result, error) { return res, nil }
	f := newFixture(t, &stamp.Stamp{Role: stamp.RolePrimary, DiskSet: "d1"}, hwid.Identity{ID: machineB}, WithBootResult(last))
	var s peer.NodeStatus
	f.m.FillStatus(&s)
	if s.Boot != "" || s.SafeMode != "" {
		t.Fatalf("before the boot result: %+v", s)
	}
	f.m.LoadBoot()
	f.m.LoadBoot() // a restarted agent: not recorded again
	if evs := f.events("bootcheck"); len(evs) != 1 || evs[0].msg != "boot decision: safe-mode: unknown machine" {
		t.Errorf("bootcheck events %+v", evs)
	}
	if evs := f.events("bootcheck-warning"); len(evs) != 1 || evs[0].msg != "boot warning: no driver for eth9" {
		t.Errorf("warning events %+v", evs)
	}
	f.m.FillStatus(&s)
	if s.Boot != bootcheck.SafeMode || s.SafeMode != "unknown machine" || f.m.SafeMode() != "unknown machine" {
		t.Errorf("status in safe mode: %+v", s)
	}

	// Adopt: the machine is recorded, the decision taken again, and the
	// role started.
	home := &bootcheck.Result{ID: "boot-2", Outcome: bootcheck.Secondary, Reason: "home"}
	var started, roleStarted bool
	f2 := newFixture(t, &stamp.Stamp{ClusterID: "c1", ClusterName: "office", Role: stamp.RoleSecondary, DiskSet: "d1", Generation: 1, HomeHardware: machineA, Written: time.Now().UTC()}, hwid.Identity{ID: machineB},
		WithBootResult(last),
		WithBootcheck(func(context.Context, bootcheck.Options) (*bootcheck.Result, error) { return home, nil }),
		WithStartRole(func(context.Context) error { started = true; return nil }))
	f2.m.d.RoleStarted = func() { roleStarted = true }
	if err := stamp.WriteStamp(filepath.Join(f2.dir, stamp.StampFile), f2.stamp); err != nil {
		t.Fatal(err)
	}
	f2.m.LoadBoot()
	ar, err := f2.m.Adopt(context.Background(), "", false)
	if err != nil || ar.Machine != machineB || ar.Replaces != machineA || ar.Result != home || !started || !roleStarted {
		t.Fatalf("adopt: %+v %v (started %v %v)", ar, err, started, roleStarted)
	}
	if f2.m.SafeMode() != "" || f2.m.Boot() != home || len(f2.events("adopt")) != 1 {
		t.Errorf("after adopt: safe mode %q, boot %+v, events %+v", f2.m.SafeMode(), f2.m.Boot(), f2.evs)
	}
	if _, err := f2.m.Adopt(context.Background(), "", false); err == nil || !strings.HasPrefix(err.Error(), "nothing to adopt") {
		t.Errorf("a second adopt: %v", err)
	}
}
