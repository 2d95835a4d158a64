package hwid

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// dmiTree writes a fixture DMI directory; a nil files map means no directory.
func dmiTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dmi", "id")
	if files == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fixture installs links as the link listing for one test, and returns dir
// (the DMI folder to pass as Options.DMIDir).
func fixture(t *testing.T, dir string, links []NIC) string {
	t.Helper()
	oldList := listLinks
	t.Cleanup(func() { listLinks = oldList })
	listLinks = func() ([]NIC, error) { return append([]NIC(nil), links...), nil }
	return dir
}

var (
	eth0   = NIC{Name: "eth0", MAC: "52:54:00:AA:00:02", Kind: "device"}
	eth1   = NIC{Name: "eth1", MAC: "52:54:00:aa:00:01", Kind: "device"}
	veth0  = NIC{Name: "host0", MAC: "0a:00:00:00:00:07", Kind: "veth"}
	br0    = NIC{Name: "br0", MAC: "0a:00:00:00:00:09", Kind: "bridge"}
	zero   = NIC{Name: "eth9", MAC: "00:00:00:00:00:00", Kind: "device"}
	ipoib  = NIC{Name: "ib0", MAC: "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01", Kind: "device"}
	nonMAC = NIC{Name: "sit0", MAC: "", Kind: "device"}

	eth0Norm = NIC{Name: "eth0", MAC: "52:54:00:aa:00:02", Kind: "device"}
)

func TestDetect(t *testing.T) {
	const goodUUID = "4C4C4544-0042-3510-8052-B4C04F4E3732\n"
	tests := []struct {
		name     string
		dmi      map[string]string // nil: DMI directory missing
		links    []NIC
		opt      Options
		wantID   string
		wantSrc  string
		wantNICs []NIC
		wantErr  string // substring; "" means success
	}{
		{
			name:     "good product_uuid",
			dmi:      map[string]string{"product_uuid": goodUUID, "board_serial": "BSN123\n"},
			links:    []NIC{eth0, eth1},
			wantID:   "dmi:uuid=4c4c4544-0042-3510-8052-b4c04f4e3732",
			wantSrc:  SourceDMIProductUUID,
			wantNICs: []NIC{eth1, eth0Norm},
		},
		{
			name:    "good product_uuid in dmi mode",
			dmi:     map[string]string{"product_uuid": goodUUID},
			opt:     Options{Mode: ModeDMI},
			wantID:  "dmi:uuid=4c4c4544-0042-3510-8052-b4c04f4e3732",
			wantSrc: SourceDMIProductUUID,
		},
		{
			name:     "junk uuid falls back to board serial",
			dmi:      map[string]string{"product_uuid": "03000200-0400-0500-0006-000700080009\n", "board_serial": "  /7XW2K12/CN129636A0012V/  \n"},
			links:    []NIC{eth0},
			wantID:   "dmi:board=/7XW2K12/CN129636A0012V/",
			wantSrc:  SourceDMIBoardSerial,
			wantNICs: []NIC{eth0Norm},
		},
		{
			name:    "missing uuid falls back to board serial",
			dmi:     map[string]string{"board_serial": "ABC"},
			wantID:  "dmi:board=ABC",
			wantSrc: SourceDMIBoardSerial,
		},
		{
			name:     "junk both falls back to MACs",
			dmi:      map[string]string{"product_uuid": "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", "board_serial": "to be filled by o.e.m."},
			links:    []NIC{eth0, eth1},
			wantID:   "mac:52:54:00:aa:00:01,52:54:00:aa:00:02",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{eth1, eth0Norm},
		},
		{
			name:     "missing dmi dir falls back to MACs in auto mode",
			links:    []NIC{eth1},
			opt:      Options{Mode: ModeAuto},
			wantID:   "mac:52:54:00:aa:00:01",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{eth1},
		},
		{
			name:    "dmi mode with missing dir is an error",
			links:   []NIC{eth0},
			opt:     Options{Mode: ModeDMI},
			wantErr: "product_uuid",
		},
		{
			name:    "dmi mode with junk values is an error",
			dmi:     map[string]string{"product_uuid": "Not Specified", "board_serial": "Default string"},
			links:   []NIC{eth0},
			opt:     Options{Mode: ModeDMI},
			wantErr: "placeholder",
		},
		{
			name:     "mac mode ignores good DMI",
			dmi:      map[string]string{"product_uuid": goodUUID},
			links:    []NIC{eth0},
			opt:      Options{Mode: ModeMAC},
			wantID:   "mac:52:54:00:aa:00:02",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{eth0Norm},
		},
		{
			name:    "mac mode without NICs is an error",
			links:   []NIC{veth0, br0, zero},
			opt:     Options{Mode: ModeMAC},
			wantErr: "no physical NIC found (kinds counted: device)",
		},
		{
			name:    "auto mode without DMI or NICs names the kinds",
			links:   nil,
			opt:     Options{NICKinds: []string{"device", "veth"}},
			wantErr: "no physical NIC found (kinds counted: device,veth)",
		},
		{
			name:     "veth excluded by default",
			links:    []NIC{veth0, eth1},
			wantID:   "mac:52:54:00:aa:00:01",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{eth1},
		},
		{
			name:     "veth included when asked, bridge still not",
			links:    []NIC{br0, veth0, eth1},
			opt:      Options{NICKinds: []string{"device", "veth"}},
			wantID:   "mac:0a:00:00:00:00:07,52:54:00:aa:00:01",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{veth0, eth1},
		},
		{
			name:     "bridge counted only when listed",
			links:    []NIC{br0, veth0},
			opt:      Options{Mode: ModeMAC, NICKinds: []string{"bridge"}},
			wantID:   "mac:0a:00:00:00:00:09",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{br0},
		},
		{
			name:     "zero, non-6-byte and missing MACs skipped",
			links:    []NIC{zero, ipoib, nonMAC, eth0},
			wantID:   "mac:52:54:00:aa:00:02",
			wantSrc:  SourceMAC,
			wantNICs: []NIC{eth0Norm},
		},
		{
			name:    "NICs filled even from DMI; empty list, not nil",
			dmi:     map[string]string{"product_uuid": goodUUID},
			links:   []NIC{veth0},
			wantID:  "dmi:uuid=4c4c4544-0042-3510-8052-b4c04f4e3732",
			wantSrc: SourceDMIProductUUID,
		},
		{
			name:    "unknown mode",
			opt:     Options{Mode: "bios"},
			wantErr: `unknown mode "bios"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.DMIDir = fixture(t, dmiTree(t, tc.dmi), tc.links)
			got, err := Detect(tc.opt)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Detect() = %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect() error: %v", err)
			}
			if got.ID != tc.wantID || got.Source != tc.wantSrc {
				t.Errorf("Detect() ID, Source = %q, %q; want %q, %q", got.ID, got.Source, tc.wantID, tc.wantSrc)
			}
			want := tc.wantNICs
			if want == nil {
				want = []NIC{}
			}
			if got.NICs == nil || !reflect.DeepEqual(got.NICs, want) {
				t.Errorf("Detect() NICs = %#v; want %#v", got.NICs, want)
			}
		})
	}
}

func TestDMIModeMissingDirNamesPath(t *testing.T) {
	dir := dmiTree(t, nil)
	fixture(t, dir, []NIC{eth0})
	_, err := Detect(Options{Mode: ModeDMI, DMIDir: dir})
	if err == nil {
		t.Fatal("Detect(dmi) with missing DMI dir succeeded")
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, "product_uuid")) {
		t.Errorf("error %q does not name %s", err, filepath.Join(dir, "product_uuid"))
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %q does not wrap os.ErrNotExist", err)
	}
}

func TestMACOrderIndependence(t *testing.T) {
	a := NIC{Name: "enp1s0", MAC: "52:54:00:00:00:03", Kind: "device"}
	b := NIC{Name: "enp2s0", MAC: "52:54:00:00:00:01", Kind: "device"}
	c := NIC{Name: "enp3s0", MAC: "52:54:00:00:00:02", Kind: "device"}
	// Same MACs under other names, upper-case, in another order.
	renamed := []NIC{
		{Name: "eth2", MAC: "52:54:00:00:00:02", Kind: "device"},
		{Name: "eth0", MAC: "52:54:00:00:00:03", Kind: "device"},
		{Name: "wlan0", MAC: "52-54-00-00-00-01", Kind: "device"},
	}
	const want = "mac:52:54:00:00:00:01,52:54:00:00:00:02,52:54:00:00:00:03"
	for i, links := range [][]NIC{{a, b, c}, {c, b, a}, {b, a, c}, renamed} {
		dmi := fixture(t, dmiTree(t, nil), links)
		got, err := Detect(Options{Mode: ModeMAC, DMIDir: dmi})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if got.ID != want {
			t.Errorf("case %d: ID = %q; want %q", i, got.ID, want)
		}
		for j := 1; j < len(got.NICs); j++ {
			if got.NICs[j-1].MAC >= got.NICs[j].MAC {
				t.Errorf("case %d: NICs not sorted by MAC: %v", i, got.NICs)
			}
		}
	}
}

func TestDuplicateMACsCollapsedInID(t *testing.T) {
	dmi := fixture(t, dmiTree(t, nil), []NIC{
		{Name: "eth1", MAC: "52:54:00:00:00:01", Kind: "device"},
		{Name: "eth0", MAC: "52:54:00:00:00:01", Kind: "device"},
	})
	got, err := Detect(Options{DMIDir: dmi})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "mac:52:54:00:00:00:01" {
		t.Errorf("ID = %q", got.ID)
	}
	if len(got.NICs) != 2 || got.NICs[0].Name != "eth0" {
		t.Errorf("NICs = %v; want both, eth0 first", got.NICs)
	}
}

func TestListLinksError(t *testing.T) {
	dmi := fixture(t, dmiTree(t, map[string]string{"product_uuid": "4c4c4544-0042-3510-8052-b4c04f4e3732"}), nil)
	boom := errors.New("boom")
	listLinks = func() ([]NIC, error) { return nil, boom }
	if _, err := Detect(Options{DMIDir: dmi}); !errors.Is(err, boom) {
		t.Errorf("Detect() error = %v; want wrapping %v", err, boom)
	}
}

func TestJunkDMI(t *testing.T) {
	junk := []string{
		"", "None", "NONE", "Not Specified", "not specified", "To be filled by O.E.M.",
		"Default string", "DEFAULT STRING", "0", "00000000-0000-0000-0000-000000000000",
		"03000200-0400-0500-0006-000700080009", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
		"ffffffff", "-",
	}
	for _, v := range junk {
		if !junkDMI(v) {
			t.Errorf("junkDMI(%q) = false; want true", v)
		}
	}
	good := []string{
		"4c4c4544-0042-3510-8052-b4c04f4e3732", "00000000-0000-0000-0000-000000000001",
		"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFE", "CN129636A0012V", "10", "f0",
	}
	for _, v := range good {
		if junkDMI(v) {
			t.Errorf("junkDMI(%q) = true; want false", v)
		}
	}
}

func TestIdentityJSONRoundTrip(t *testing.T) {
	in := Identity{
		ID:     "mac:0a:00:00:00:00:07,52:54:00:aa:00:01",
		Source: SourceMAC,
		NICs: []NIC{
			{Name: "host0", MAC: "0a:00:00:00:00:07", Kind: "veth"},
			{Name: "eth1", MAC: "52:54:00:aa:00:01", Kind: "device", Driver: "virtio_net"},
		},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id":`, `"source":`, `"nics":`, `"name":`, `"mac":`, `"kind":`, `"driver":"virtio_net"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	if strings.Count(string(b), `"driver"`) != 1 {
		t.Errorf("JSON %s: empty driver not omitted", b)
	}
	var out Identity
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: got %+v; want %+v", out, in)
	}
}

// TestNetlinkLinksReal lists the links of the test's own network namespace
// through the real netlink implementation.
func TestNetlinkLinksReal(t *testing.T) {
	nics, err := netlinkLinks()
	if err != nil {
		t.Fatalf("netlinkLinks() error: %v", err)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatalf("net.Interfaces() error: %v", err)
	}
	byName := map[string]net.Interface{}
	var loopbacks []string
	for _, ifc := range ifaces {
		byName[ifc.Name] = ifc
		if ifc.Flags&net.FlagLoopback != 0 {
			loopbacks = append(loopbacks, ifc.Name)
		}
	}
	// Every network namespace has a loopback; without one the check
	// below would prove nothing.
	if len(loopbacks) == 0 {
		t.Fatalf("no loopback interface in %v", ifaces)
	}
	for _, n := range nics {
		if n.Name == "lo" {
			t.Errorf("loopback %q in result %v", n.Name, nics)
		}
		ifc, ok := byName[n.Name]
		if !ok {
			t.Errorf("%q not an interface of this namespace (%v)", n.Name, ifaces)
			continue
		}
		if ifc.Flags&net.FlagLoopback != 0 {
			t.Errorf("loopback %q in result %v", n.Name, nics)
		}
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || !usableMAC(hw) || hw.String() != n.MAC {
			t.Errorf("%s: MAC %q not a normalised usable 6-byte MAC", n.Name, n.MAC)
		}
		if n.Kind == "" {
			t.Errorf("%s: empty kind", n.Name)
		}
	}
	t.Logf("links: %+v (loopbacks skipped: %v)", nics, loopbacks)
}
