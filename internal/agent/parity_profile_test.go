package agent

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/modules"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

const (
	machineA = "dmi:uuid=aaaaaaaa-0000-0000-0000-00000000000a"
	machineB = "dmi:uuid=bbbbbbbb-0000-0000-0000-00000000000b"
)

// fixtureInventory takes the inventory of one of the inventory package's
// fixture nodes, knowing the devices of peer (as after a first exchange).
func fixtureInventory(t *testing.T, node, name, machineID string, peer *inventory.Inventory) *inventory.Inventory {
	t.Helper()
	src := inventory.Host(filepath.Join("../../synchronizer/inventory/testdata/nodes", node))
	src.Node, src.MachineID = name, machineID
	src.Now = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	src.Initramfs = func(image string) inventory.Initramfs {
		out, err := os.ReadFile(image + ".lsinitramfs")
		if err != nil {
			return inventory.Initramfs{Image: image, State: inventory.StateUnknown, Reason: err.Error()}
		}
		return inventory.ParseLsinitramfs(image, out)
	}
	if peer != nil {
		src.Modaliases = peer.Hardware.Modaliases()
	}
	inv, err := inventory.Take(src)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// fixturePair is P's inventory (taken on machine A) and S's (machine B).
func fixturePair(t *testing.T) (p, s *inventory.Inventory) {
	t.Helper()
	p0 := fixtureInventory(t, "p", "node-p", machineA, nil)
	s0 := fixtureInventory(t, "s", "node-s", machineB, nil)
	return fixtureInventory(t, "p", "node-p", machineA, s0), fixtureInventory(t, "s", "node-s", machineB, p0)
}

// parityAgent is an agent with a role, a machine and inventories, and no
// store, socket or peer link: enough for the parity code that does not
// send.
func parityAgent(t *testing.T, name, role, peerName, machine string, self, peerInv *inventory.Inventory) (*Agent, *bytes.Buffer) {
	t.Helper()
	cfg := config.Default()
	cfg.Node.Name = name
	logs := &bytes.Buffer{}
	a := &Agent{log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		stamp: &stamp.Stamp{Role: role}, cluster: &stamp.Cluster{NodeName: name, PeerName: peerName},
		hw: hwid.Identity{ID: machine}, paths: paths{clusterDir: profileClusterDir, modules: modules.OptionsAt(t.TempDir()), apt: testAptTrust}}
	a.cfg.Store(&cfg)
	a.newComponents()
	a.parity.self, a.parity.peer = self, peerInv
	return a, logs
}

// profileClusterDir is the cluster folder of the agents parityAgent makes
// next (useHardwareDir sets it).
var profileClusterDir string

// useHardwareDir gives the next agents of the test a cluster folder of
// their own and returns its hardware profiles' folder.
func useHardwareDir(t *testing.T) string {
	t.Helper()
	profileClusterDir = filepath.Join(t.TempDir(), "cluster")
	return filepath.Join(profileClusterDir, "hardware")
}

func TestSaveHardwareProfiles(t *testing.T) {
	dir := useHardwareDir(t)
	p, s := fixturePair(t)
	a, logs := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, p, s)
	a.saveHardwareProfiles()
	fileA, fileB := filepath.Join(dir, inventory.ProfileName(machineA)), filepath.Join(dir, inventory.ProfileName(machineB))
	pa, err := inventory.ReadProfile(fileA)
	if err != nil {
		t.Fatalf("this machine's profile: %v\n%s", err, logs)
	}
	pb, err := inventory.ReadProfile(fileB)
	if err != nil {
		t.Fatalf("the peer's machine's profile: %v\n%s", err, logs)
	}
	if pa.Node != "node-p" || pb.Node != "node-s" || !reflect.DeepEqual(pb.Hardware.PCI, s.Hardware.PCI) || !reflect.DeepEqual(pa.Hardware.PCI, p.Hardware.PCI) {
		t.Fatalf("profiles: A %s %d devices, B %s %d devices", pa.Node, len(pa.Hardware.PCI), pb.Node, len(pb.Hardware.PCI))
	}
	if !strings.Contains(logs.String(), "hardware profile written to the config repo") {
		t.Errorf("the write is not logged:\n%s", logs)
	}

	// A newer inventory of the same hardware writes nothing.
	st1, _ := os.Stat(fileB)
	s2 := *s
	s2.Taken = s.Taken.Add(time.Hour)
	a.parity.peer = &s2
	logs.Reset()
	a.saveHardwareProfiles()
	if st2, _ := os.Stat(fileB); !os.SameFile(st1, st2) || !st2.ModTime().Equal(st1.ModTime()) || strings.Contains(logs.String(), "written") {
		t.Fatalf("an unchanged machine's profile was rewritten:\n%s", logs)
	}

	// The sync takes the folder as it is: nothing refused, and no commit
	// for a second pass over unchanged hardware.
	policy := &synchronizer.Policy{Roots: []string{filepath.Dir(dir)}}
	repo, err := synchronizer.OpenRepo(filepath.Join(t.TempDir(), "config.git"), "node-p", policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.ScanAll(); err != nil {
		t.Fatal(err)
	}
	c, err := repo.Commit("test", time.Now())
	if err != nil || c == nil {
		t.Fatalf("first commit: %+v, %v", c, err)
	}
	if len(c.Refused) > 0 || c.Changed[fileA] == "" || c.Changed[fileB] == "" {
		t.Fatalf("the sync refused or missed a profile: changed %v, refused %v", c.Changed, c.Refused)
	}
	a.saveHardwareProfiles()
	repo.ScanAll()
	if c, err := repo.Commit("test", time.Now()); err != nil || c != nil {
		t.Fatalf("a commit after an unchanged inventory: %+v, %v", c, err)
	}

	// Only the primary writes.
	dir2 := useHardwareDir(t)
	sec, _ := parityAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB, s, p)
	sec.saveHardwareProfiles()
	if ents, _ := os.ReadDir(dir2); len(ents) != 0 {
		t.Fatalf("the secondary wrote profiles: %v", ents)
	}
}

// sameVerdict compares what compat says, not how it names the machine.
func sameVerdict(t *testing.T, what string, live, stored *inventory.CompatReport) {
	t.Helper()
	if live == nil || stored == nil {
		t.Fatalf("%s: live %v, stored %v", what, live, stored)
	}
	l, s := *live, *stored
	l.Machine, s.Machine, l.MachineFrom, s.MachineFrom = "", "", "", ""
	if !reflect.DeepEqual(l, s) {
		t.Errorf("%s: on the live inventory\n%s\non the stored profile\n%s", what, live.Text(), stored.Text())
	}
}

func TestCompatFromStoredProfile(t *testing.T) {
	useHardwareDir(t)
	p, s := fixturePair(t)
	a, _ := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, p, s)
	a.saveHardwareProfiles()
	live := a.parityReport()
	if live.CompatPonB.Boots != "no" || live.PeerProfile != nil {
		t.Fatalf("the fixture's P on B boots %q (want a failing case), profile %+v", live.CompatPonB.Boots, live.PeerProfile)
	}

	// The peer down: P's disk set on B from B's stored profile.
	a.parity.peer = nil
	r := a.parityReport()
	sameVerdict(t, "P on B", live.CompatPonB, r.CompatPonB)
	if r.CompatSonA != nil {
		t.Errorf("S on A without S's inventory: %+v", r.CompatSonA)
	}
	want := "machine B's profile from the config repo (" + filepath.Join(a.hardwareDir(), inventory.ProfileName(machineB)) + "), taken 2026-03-01T12:00:00Z"
	if !strings.Contains(r.CompatPonB.MachineFrom, want) || !strings.Contains(r.CompatPonB.Text(), want) || r.CompatPonB.Machine != "machine B (node-s's, stored profile)" {
		t.Errorf("the evidence does not say where machine B comes from: %q, %q\n%s", r.CompatPonB.Machine, r.CompatPonB.MachineFrom, r.CompatPonB.Text())
	}
	if r.PeerProfile == nil || r.PeerProfile.MachineID != machineB || r.PeerProfile.Node != "node-s" {
		t.Errorf("peer profile %+v", r.PeerProfile)
	}
	// The same devices get fixes; which package ships a module may need
	// S's software, which a profile does not have, but never is the boot
	// kernel that failed.
	var liveDevs, devs []string
	for _, f := range live.Plan.DiskSetFixes {
		if f.DiskSet == "P" {
			liveDevs = append(liveDevs, f.Device)
		}
	}
	for _, f := range r.Plan.DiskSetFixes {
		devs = append(devs, f.Device)
		if f.Package == "linux-image-"+r.CompatPonB.Kernel {
			t.Errorf("fix %+v: installs the kernel that failed", f)
		}
	}
	if len(devs) == 0 || !reflect.DeepEqual(devs, liveDevs) {
		t.Errorf("fixes of disk set P: live %+v, stored %+v", live.Plan.DiskSetFixes, r.Plan.DiskSetFixes)
	}

	// The secondary, P down: S's disk set on A, from A's profile (which
	// the sync brought).
	sec, _ := parityAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB, s, p)
	liveS := sec.parityReport()
	sec.parity.peer = nil
	rs := sec.parityReport()
	sameVerdict(t, "S on A", liveS.CompatSonA, rs.CompatSonA)
	if rs.CompatPonB != nil || !strings.Contains(rs.CompatSonA.MachineFrom, "machine A's profile from the config repo") {
		t.Errorf("secondary: P on B %+v, S on A from %q", rs.CompatPonB, rs.CompatSonA.MachineFrom)
	}

	// After a swap P's disks are in machine B, the peer down: the other
	// machine is A, whose profile P wrote while it ran there.
	onB := fixtureInventory(t, "p", "node-p", machineB, nil)
	onB.Hardware = s.Hardware
	swapped, _ := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineB, onB, nil)
	rw := swapped.parityReport()
	if rw.PeerProfile == nil || rw.PeerProfile.MachineID != machineA || rw.CompatPonB == nil || rw.CompatPonB.Machine != "machine A (node-p's, stored profile)" {
		t.Fatalf("after a swap: profile %+v, report %+v", rw.PeerProfile, rw.CompatPonB)
	}
	ownOnA := inventory.Compat(onB, &p.Hardware)
	sameVerdict(t, "P (on B) back on A", &ownOnA, rw.CompatPonB)
}

func TestCompatCorruptProfile(t *testing.T) {
	dir := useHardwareDir(t)
	p, s := fixturePair(t)
	a, logs := parityAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA, p, s)
	a.saveHardwareProfiles()
	file := filepath.Join(dir, inventory.ProfileName(machineB))
	b, _ := os.ReadFile(file)
	os.WriteFile(file, bytes.Replace(b, []byte("count = "), []byte("count = \"x"), 1), 0o644)
	a.parity.peer = nil
	r := a.parityReport()
	if r.CompatPonB != nil || !strings.Contains(r.ProfileError, file+":") {
		t.Fatalf("a corrupt profile: compat %+v, error %q", r.CompatPonB, r.ProfileError)
	}
	if !strings.Contains(logs.String(), "hardware profiles: a file could not be read") {
		t.Errorf("not logged:\n%s", logs)
	}
}
