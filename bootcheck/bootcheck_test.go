package bootcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/stamp"
)

var (
	nicA = hwid.NIC{Name: "enp1s0", MAC: "02:00:00:00:0a:01", Kind: "device"}
	nicB = hwid.NIC{Name: "eno1", MAC: "02:00:00:00:0b:01", Kind: "device"}
	nicC = hwid.NIC{Name: "ens3", MAC: "02:00:00:00:0c:01", Kind: "device"}
	hwA  = hwid.Identity{ID: "mac:02:00:00:00:0a:01", Source: "mac", NICs: []hwid.NIC{nicA}}
	hwB  = hwid.Identity{ID: "mac:02:00:00:00:0b:01", Source: "mac", NICs: []hwid.NIC{nicB}}
	hwC  = hwid.Identity{ID: "mac:02:00:00:00:0c:01", Source: "mac", NICs: []hwid.NIC{nicC}}
)

func machines() *Machines {
	return &Machines{PrimaryAddresses: []string{"192.0.2.10/24"}, Machine: []Machine{
		{ID: hwA.ID, Source: "mac", NICs: hwA.NICs, HomeOf: "node-p"},
		{ID: hwB.ID, Source: "mac", NICs: hwB.NICs, HomeOf: "node-s"},
	}}
}

func stampOf(role string, home hwid.Identity) *stamp.Stamp {
	return &stamp.Stamp{SchemaVersion: 1, ClusterID: "c1", DiskSet: "d-" + role, Role: role, Generation: 1, HomeHardware: home.ID}
}

// TestDecideTable walks the table of docs/design.md.
func TestDecideTable(t *testing.T) {
	cases := []struct {
		name     string
		in       Input
		outcome  string
		failover bool
		reason   string
	}{
		{"primary at home", Input{Stamp: stampOf("primary", hwA), Here: hwA, Machines: machines(), CACluster: "c1"}, Primary, false, "home machine"},
		{"primary on the other machine", Input{Stamp: stampOf("primary", hwA), Here: hwB, Machines: machines()}, Primary, true, "home machine of node-s"},
		{"secondary at home", Input{Stamp: stampOf("secondary", hwB), Here: hwB, Machines: machines()}, Secondary, false, "home machine"},
		{"secondary on the other machine", Input{Stamp: stampOf("secondary", hwB), Here: hwA, Machines: machines()}, Secondary, false, "node-p"},
		{"unknown machine", Input{Stamp: stampOf("primary", hwA), Here: hwC, Machines: machines()}, SafeMode, false, "is not one of this cluster's machines"},
		{"unknown machine without profiles", Input{Stamp: stampOf("secondary", hwB), Here: hwA, Machines: &Machines{}}, SafeMode, false, "known: mac:02:00:00:00:0b:01"},
		{"adopted machine", Input{Stamp: stampOf("primary", hwA), Here: hwC, Machines: machines(),
			Adopted: &Machines{Machine: []Machine{{ID: hwC.ID, NICs: hwC.NICs, Replaces: hwA.ID}}}}, Primary, false, "adopted as its home"},
		{"missing stamp, paired", Input{StampErr: fmt.Errorf("x: %w", stamp.ErrMissing), StampPath: "/var/lib/sentry/stamp.toml", Paired: true, Here: hwA}, SafeMode, false, "stamp /var/lib/sentry/stamp.toml is missing"},
		{"missing stamp, never paired", Input{StampErr: fmt.Errorf("x: %w", stamp.ErrMissing), Here: hwA}, Unpaired, false, "belongs to no cluster"},
		{"corrupt stamp", Input{StampErr: errors.New("stamp.toml: line 3: bad"), Paired: true, Here: hwA}, SafeMode, false, "unreadable: stamp.toml: line 3"},
		{"another cluster's stamp", Input{Stamp: stampOf("primary", hwA), CACluster: "c2", Here: hwA, Machines: machines()}, SafeMode, false, "of cluster c1, but this disk set's keys are of cluster c2"},
		{"another cluster's state", Input{Stamp: stampOf("primary", hwA), CACluster: "c1", StateCluster: "c9", StampPath: "/var/lib/sentry/stamp.toml",
			ClusterPath: "/var/lib/sentry/cluster.toml", Here: hwC, Machines: machines()}, SafeMode, false,
			"the disk stamp /var/lib/sentry/stamp.toml is of cluster c1, but the cluster state /var/lib/sentry/cluster.toml is of cluster c9"},
		{"no hardware identity", Input{Stamp: stampOf("primary", hwA), HereErr: errors.New("no NIC"), Machines: machines()}, SafeMode, false, "cannot identify this machine"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.in)
			if d.Outcome != c.outcome || d.Failover != c.failover || !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("got %s failover=%v %q; want %s failover=%v containing %q", d.Outcome, d.Failover, d.Reason, c.outcome, c.failover, c.reason)
			}
			// Only an unknown machine is for adopt to lift.
			if want := strings.HasPrefix(c.name, "unknown machine"); d.UnknownMachine != want {
				t.Fatalf("UnknownMachine = %v, want %v", d.UnknownMachine, want)
			}
		})
	}
}

func TestClaimConflict(t *testing.T) {
	cases := []struct {
		claim *PeerClaim
		gen   uint64
		want  bool
	}{
		{nil, 1, false},
		{&PeerClaim{Name: "s", Role: "secondary", Generation: 5}, 1, false},
		{&PeerClaim{Name: "s", Role: "primary", Generation: 2}, 1, true},
		{&PeerClaim{Name: "s", Role: "primary", Generation: 1}, 1, true},
		{&PeerClaim{Name: "s", Role: "primary", Generation: 1}, 2, false},
		{&PeerClaim{Name: "s", Role: "primary", Generation: 3, SafeMode: "held"}, 1, false},
	}
	for _, c := range cases {
		why, got := ClaimConflict(c.claim, c.gen)
		if got != c.want {
			t.Errorf("%+v gen %d: got %v (%s), want %v", c.claim, c.gen, got, why, c.want)
		}
		if got && !strings.Contains(why, "generation") {
			t.Errorf("reason %q does not name the generation", why)
		}
	}
}

func TestARPPacket(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:0a:01")
	ip := net.ParseIP("192.0.2.10")
	p := arpPacket(mac, ip)
	if len(p) != 28 || p[7] != 1 || !net.IP(p[24:28]).Equal(ip) || !net.IP(p[14:18]).Equal(net.IPv4zero) {
		t.Fatalf("probe packet %x", p)
	}
	// Our own probe is not an answer; a reply from the holder is.
	if _, ok := arpAnswer(p, ip, mac); ok {
		t.Fatal("own probe taken for an answer")
	}
	other, _ := net.ParseMAC("02:00:00:00:0b:01")
	reply := arpPacket(other, net.ParseIP("192.0.2.99"))
	reply[7] = 2
	copy(reply[14:18], ip.To4())
	got, ok := arpAnswer(reply, ip, mac)
	if !ok || got.String() != other.String() {
		t.Fatalf("reply not recognised: %v %v", got, ok)
	}
	// A reply for another address is no answer.
	copy(reply[14:18], net.ParseIP("192.0.2.11").To4())
	if _, ok := arpAnswer(reply, ip, mac); ok {
		t.Fatal("reply for another address taken for an answer")
	}
	if _, ok := arpAnswer(reply[:20], ip, mac); ok {
		t.Fatal("short packet taken for an answer")
	}
}

const installerNetwork = `# Written by the installer for the NIC of machine a.
[Match]
MACAddress=02:00:00:00:0a:01

[Network]
Address=192.0.2.10/24
LinkLocalAddressing=no
IPv6AcceptRA=no
`

func TestAdaptNetwork(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "10-installer.network"), []byte(installerNetwork), 0o644)
	os.WriteFile(filepath.Join(dir, "20-other.network"), []byte("[Match]\nMACAddress=02:00:00:00:ff:ff\n[Network]\nDHCP=yes\n"), 0o644)
	files, err := RoleNetworks(dir, hwA.NICs)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Addresses()[0] != "192.0.2.10/24" {
		t.Fatalf("role networks: %+v", files)
	}
	plan, err := AdaptNetwork(files, hwA.NICs, hwB.NICs, []string{"192.0.2.10/24", "192.0.2.30/24"})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Files) != 1 {
		t.Fatalf("files: %v", plan.Files)
	}
	for name, b := range plan.Files {
		if !strings.HasPrefix(name, "05-sentry-") {
			t.Errorf("name %s does not sort before the installer's", name)
		}
		f, err := parseNetwork(name, b)
		if err != nil {
			t.Fatal(err)
		}
		if m := f.MatchMACs(); len(m) != 1 || m[0] != nicB.MAC {
			t.Errorf("adapted file matches %v, want %s:\n%s", m, nicB.MAC, b)
		}
		if a := f.Addresses(); strings.Join(a, " ") != "192.0.2.10/24 192.0.2.30/24" {
			t.Errorf("addresses %v (the primary's address once, the extra one added):\n%s", a, b)
		}
		if !strings.Contains(string(b), "IPv6AcceptRA=no") {
			t.Errorf("other settings lost:\n%s", b)
		}
	}
	if got := plan.Addresses["eno1"]; len(got) != 2 {
		t.Errorf("addresses on eno1: %v", got)
	}
	// A machine with fewer NICs than the role needs is an error naming the file.
	two := []hwid.NIC{nicA, {Name: "enp2s0", MAC: "02:00:00:00:0a:02"}}
	os.WriteFile(filepath.Join(dir, "30-second.network"), []byte("[Match]\nMACAddress=02:00:00:00:0a:02\n[Network]\nAddress=10.0.0.1/24\n"), 0o644)
	files, _ = RoleNetworks(dir, two)
	if _, err := AdaptNetwork(files, two, hwB.NICs, nil); err == nil || !strings.Contains(err.Error(), "30-second.network") {
		t.Fatalf("want an error naming 30-second.network, got %v", err)
	}
	// WritePlan replaces bootcheck's old files and leaves others alone.
	run := t.TempDir()
	os.WriteFile(filepath.Join(run, "05-sentry-stale.network"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(run, "99-admin.network"), []byte("x"), 0o644)
	if err := WritePlan(run, SafeNetwork(hwB.NICs)); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(run, "*"))
	if len(names) != 2 || !strings.HasSuffix(names[0], "05-sentry-safe-00.network") || !strings.HasSuffix(names[1], "99-admin.network") {
		t.Fatalf("after WritePlan: %v", names)
	}
	b, _ := os.ReadFile(names[0])
	if strings.Contains(string(b), "\nAddress=") || !strings.Contains(string(b), nicB.MAC) {
		t.Fatalf("safe network file:\n%s", b)
	}
}

func TestParseNetworkError(t *testing.T) {
	_, err := parseNetwork("/etc/systemd/network/x.network", []byte("[Match]\nName=e*\ngarbage\n"))
	if err == nil || !strings.Contains(err.Error(), "/etc/systemd/network/x.network:3:") {
		t.Fatalf("want file:line error, got %v", err)
	}
}

func TestMachinesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cluster", "machines.toml")
	if _, err := ReadMachines(p); !errors.Is(err, ErrNoProfiles) {
		t.Fatalf("missing file: %v", err)
	}
	m := machines()
	if err := WriteMachines(p, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMachines(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Machine) != 2 || got.Machine[1].NICs[0].MAC != nicB.MAC || got.PrimaryAddresses[0] != "192.0.2.10/24" {
		t.Fatalf("round trip: %+v", got)
	}
	if got.Put(Machine{ID: hwA.ID, Source: "mac", NICs: hwA.NICs, HomeOf: "node-p", Seen: time.Now()}) {
		t.Error("Put of the same profile (new Seen only) reported a change")
	}
	if !got.Put(Machine{ID: hwC.ID, NICs: hwC.NICs}) || len(got.Machine) != 3 {
		t.Error("Put of a new machine")
	}
	os.WriteFile(p, []byte("schema_version = 1\n[[machine]]\nid = \"x\"\ncolour = \"red\"\n"), 0o644)
	if _, err := ReadMachines(p); err == nil || !strings.Contains(err.Error(), `unknown key "machine.colour"`) {
		t.Fatalf("unknown key: %v", err)
	}
	os.WriteFile(p, []byte("schema_version = 1\n[[machine]\n"), 0o644)
	if _, err := ReadMachines(p); err == nil || !strings.Contains(err.Error(), "machines.toml:3:") {
		t.Fatalf("syntax error without line: %v", err)
	}
}

func TestInstall(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib/systemd/system")
	os.MkdirAll(lib, 0o755)
	for _, u := range []string{"nginx.service", "postgresql@.service"} {
		os.WriteFile(filepath.Join(lib, u), []byte("[Unit]\n"), 0o644)
	}
	res, err := Install(root, RoleUnits)
	if err != nil {
		t.Fatal(err)
	}
	wrote := res.Wrote
	want := []string{"sentry-bootcheck.service", "sentry-role.target", "nginx.service.d/" + DropInName, "postgresql@.service.d/" + DropInName}
	if len(wrote) != len(want) {
		t.Fatalf("wrote %v", wrote)
	}
	sys := filepath.Join(root, "etc/systemd/system")
	for _, w := range want {
		if _, err := os.Stat(filepath.Join(sys, w)); err != nil {
			t.Error(err)
		}
	}
	if l, err := os.Readlink(filepath.Join(sys, "sentry-role.target.wants/nginx.service")); err != nil || l != "/lib/systemd/system/nginx.service" {
		t.Errorf("role target wants nginx: %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(sys, "sentry-role.target.wants/postgresql@.service")); err == nil {
		t.Error("a template unit was linked into the role target")
	}
	if _, err := os.Lstat(filepath.Join(sys, "multi-user.target.wants", UnitName)); err != nil {
		t.Error("bootcheck not enabled")
	}
	if _, err := Install(root, []string{"nginx"}); err == nil {
		t.Error("a unit name without suffix was accepted")
	}
}

// TestInstallPackaged: with the package's units in /lib/systemd/system,
// install writes no copy into /etc/systemd/system (it would shadow them),
// enables the package's, removes a copy an earlier install wrote, and
// refuses to remove one the administrator edited.
func TestInstallPackaged(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib/systemd/system")
	sys := filepath.Join(root, "etc/systemd/system")
	os.MkdirAll(lib, 0o755)
	for u, text := range map[string]string{"nginx.service": "[Unit]\n", UnitName: strings.ReplaceAll(Unit, "/usr/local/bin/", "/usr/bin/"), RoleTarget: Target} {
		os.WriteFile(filepath.Join(lib, u), []byte(text), 0o644)
	}
	// What an install before the package left.
	os.MkdirAll(sys, 0o755)
	os.WriteFile(filepath.Join(sys, UnitName), []byte(Unit), 0o644)
	res, err := Install(root, RoleUnits)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc/systemd/system/nginx.service.d/" + DropInName}; !slices.Equal(res.Wrote, want) {
		t.Errorf("wrote %v, want %v", res.Wrote, want)
	}
	if want := []string{"/etc/systemd/system/" + UnitName}; !slices.Equal(res.Removed, want) {
		t.Errorf("removed %v, want %v", res.Removed, want)
	}
	for _, u := range []string{UnitName, RoleTarget} {
		if _, err := os.Lstat(filepath.Join(sys, u)); err == nil {
			t.Errorf("%s is in /etc/systemd/system, shadowing the package's", u)
		}
		if l, err := os.Readlink(filepath.Join(sys, "multi-user.target.wants", u)); err != nil || l != "/lib/systemd/system/"+u {
			t.Errorf("%s enabled as %q (%v), want the package's", u, l, err)
		}
	}
	// Again: nothing to remove, the same drop-in.
	res, err = Install(root, RoleUnits)
	if err != nil || len(res.Removed) != 0 || len(res.Wrote) != 1 {
		t.Errorf("second install: %+v %v", res, err)
	}
	// An edited copy is kept, and the error says what to do.
	os.WriteFile(filepath.Join(sys, RoleTarget), []byte(Target+"# mine\n"), 0o644)
	_, err = Install(root, RoleUnits)
	if err == nil || !strings.Contains(err.Error(), "/etc/systemd/system/"+RoleTarget+" shadows the packaged /lib/systemd/system/"+RoleTarget) || !strings.Contains(err.Error(), "drop-in") {
		t.Errorf("edited copy: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(sys, RoleTarget)); !strings.Contains(string(b), "# mine") {
		t.Error("the edited copy was not kept")
	}
}

// fixture is a disk set's state folder and /etc, and this boot's /run:
// machines is the cluster's machine profiles, paths the folders a run
// reads and writes (give both to Run).
type fixture struct {
	state, etc, run string
	machines        string
	paths           Paths
}

func newFixture(t testing.TB) fixture {
	return fixtureIn(t, t.TempDir())
}

func fixtureIn(t testing.TB, d string) fixture {
	f := fixture{state: filepath.Join(d, "var/lib/sentry"), etc: filepath.Join(d, "etc"), run: filepath.Join(d, "run")}
	os.MkdirAll(f.state, 0o700)
	os.MkdirAll(filepath.Join(f.etc, "systemd/network"), 0o755)
	os.WriteFile(filepath.Join(f.etc, "systemd/network/10-installer.network"), []byte(installerNetwork), 0o644)
	// The disks are those of the inventory's fixture P; the machine is S's
	// (an RTL8126 NIC that only S's newer kernel knows).
	inv := "../synchronizer/inventory/testdata/nodes/"
	t.Setenv(SysEnv, "")
	f.machines = filepath.Join(f.etc, "sentry/cluster/machines.toml")
	f.paths = Paths{
		SysDir: inv + "s/sys", ModulesDir: inv + "p/lib/modules", FirmwareDir: inv + "p/lib/firmware",
		NetworkDir: filepath.Join(f.etc, "systemd/network"),
		RunDir:     filepath.Join(f.run, "sentry"), RunNetworkDir: filepath.Join(f.run, "systemd/network"),
	}
	return f
}

// TestRunFailover runs the whole decision on fixture trees: the primary
// disk set on machine B writes B's network and the role marker.
func TestRunFailover(t *testing.T) {
	f := newFixture(t)
	st := stampOf("primary", hwA)
	if err := stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), st); err != nil {
		t.Fatal(err)
	}
	if err := WriteMachines(f.machines, machines()); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true,
		Identify: func() (hwid.Identity, error) { return hwB, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Primary || !res.Failover || res.Hardware != hwB.ID || res.HomeHardware != hwA.ID {
		t.Fatalf("result %+v", res)
	}
	b, err := os.ReadFile(filepath.Join(f.paths.RunDir, RoleName))
	if err != nil || strings.TrimSpace(string(b)) != "primary" {
		t.Fatalf("role marker %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(f.paths.RunDir, SafeName)); err == nil {
		t.Fatal("safe-mode marker on a primary boot")
	}
	// NoNetwork writes no network files, but the plan is in the result.
	if res.Network == nil || len(res.Network.Addresses["eno1"]) != 1 {
		t.Fatalf("network plan %+v", res.Network)
	}
	last, err := f.paths.Last()
	if err != nil || last.ID != res.ID {
		t.Fatalf("Last: %v %v", last, err)
	}
	names := []string{}
	for _, s := range res.Stages {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "read-stamp,identify-hardware,read-profiles,check-drivers,adapt-network,write-result" {
		t.Fatalf("stages %v", names)
	}
	// The driver check names the NIC these disks have no module for.
	if res.Drivers == nil || res.Drivers.Boots != "no" || !strings.Contains(strings.Join(res.Drivers.Because, " "), "10ec:8126") {
		t.Fatalf("driver check: %+v", res.Drivers)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "lack drivers for this machine") {
		t.Fatalf("warnings %v", res.Warnings)
	}
	if prev, err := readResult(filepath.Join(f.state, LastName)); err != nil || prev.Hardware != hwB.ID {
		t.Fatalf("last boot record: %v %v", prev, err)
	}
}

// TestRunSafeMode: an unknown machine holds the role, writes the safe-mode
// marker and a network that gives no address, and says adopt can lift it.
func TestRunSafeMode(t *testing.T) {
	f := newFixture(t)
	stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), stampOf("primary", hwA))
	WriteMachines(f.machines, machines())
	// A role marker left from before must go.
	os.MkdirAll(f.paths.RunDir, 0o755)
	os.WriteFile(filepath.Join(f.paths.RunDir, RoleName), []byte("primary\n"), 0o644)
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths,
		Identify: func() (hwid.Identity, error) { return hwC, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != SafeMode || !res.UnknownMachine || !strings.Contains(res.Reason, hwC.ID) {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(filepath.Join(f.paths.RunDir, RoleName)); err == nil {
		t.Fatal("role marker left in safe mode")
	}
	b, err := os.ReadFile(filepath.Join(f.paths.RunDir, SafeName))
	if err != nil || !strings.Contains(string(b), "not one of this cluster's machines") {
		t.Fatalf("safe marker %q %v", b, err)
	}
	nf, _ := filepath.Glob(filepath.Join(f.paths.RunNetworkDir, "*"))
	if len(nf) != 1 {
		t.Fatalf("network files %v", nf)
	}
	nb, _ := os.ReadFile(nf[0])
	if strings.Contains(string(nb), "\nAddress=") {
		t.Fatalf("safe network gives an address:\n%s", nb)
	}
	var decoded Result
	jb, _ := os.ReadFile(filepath.Join(f.paths.RunDir, ResultName))
	if err := json.Unmarshal(jb, &decoded); err != nil || decoded.Outcome != SafeMode {
		t.Fatalf("result file: %v %s", err, jb)
	}
}

// TestRunCorruptStamp: a stamp that is not TOML is safe mode with the
// file's error.
func TestRunCorruptStamp(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(filepath.Join(f.state, stamp.StampFile), []byte("schema_version = 1\nrole = \n"), 0o600)
	os.WriteFile(filepath.Join(f.state, stamp.ClusterFile), []byte("x"), 0o600)
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true,
		Identify: func() (hwid.Identity, error) { return hwA, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != SafeMode || !strings.Contains(res.Reason, "stamp") || res.UnknownMachine {
		t.Fatalf("result %+v", res)
	}
}

// BenchmarkRunSecondary is a whole boot decision without a probe (the
// secondary's case) on fixture trees: stamp, hardware, profiles, the driver
// check against a kernel module tree, network plan, result files. The lab
// figures (real nodes, with the primary's probe) are printed by
// e2e TestBootSwapTen.
func BenchmarkRunSecondary(b *testing.B) {
	f := fixtureIn(b, b.TempDir())
	stamp.WriteStamp(filepath.Join(f.state, stamp.StampFile), stampOf("secondary", hwB))
	WriteMachines(f.machines, machines())
	opt := Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, Identify: func() (hwid.Identity, error) { return hwA, nil }}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Run(context.Background(), opt)
		if err != nil || res.Outcome != Secondary {
			b.Fatalf("%v %+v", err, res)
		}
	}
}
