package inventory

import (
	"reflect"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"pci:v00008086d000010D3sv*sd*bc*sc*i*", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", true},
		{"pci:v00008086d000010D3sv*sd*bc*sc*i*", "pci:v00008086d000010D4sv00008086sd0000A01Fbc02sc00i00", false},
		{"pci:v*d*sv*sd*bc01sc06i01*", "pci:v00008086d0000A182sv00001028sd00000716bc01sc06i01", true},
		{"pci:v*d*sv*sd*bc01sc06i01*", "pci:v00008086d0000A182sv00001028sd00000716bc01sc04i00", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[ab]x", "bx", true},
		{"[!ab]x", "bx", false},
		{"[a-c]x", "cx", true},
		{"[^a-c]x", "dx", true},
		{"a[b", "a[b", true}, // no ], a plain [
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"", "", true},
		{"", "a", false},
	}
	for _, tc := range tests {
		if got := Glob(tc.p, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func TestModulesFor(t *testing.T) {
	k, err := ReadKernel("testdata/nodes/s/lib/modules/6.12.9-amd64")
	if err != nil {
		t.Fatal(err)
	}
	m := k.Matcher()
	tests := []struct {
		modalias string
		want     []string
	}{
		{"pci:v00008086d00001521sv00008086sd00000001bc02sc00i00", []string{"igb"}},
		{"pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", []string{"e1000e"}},
		{"pci:v00001000d0000005Dsv00001028sd00001F49bc01sc04i00", []string{"megaraid_sas"}},
		// Both the id line and the class line name ahci: once.
		{"pci:v00008086d0000A182sv00001028sd00000716bc01sc06i01", []string{"ahci"}},
		// Only the class line: any vendor's AHCI controller.
		{"pci:v00001B21d00000612sv00001B21sd00001060bc01sc06i01", []string{"ahci"}},
		{"pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02", []string{"nvme"}},
		{"pci:v000010ECd00008126sv00001462sd00007D25bc02sc00i00", []string{"r8169"}},
		// Built-in: from modules.builtin.modinfo.
		{"pci:v00008086d0000A1AFsv00008086sd00007270bc0Csc03i30", []string{"xhci_pci"}},
		{"pci:v00001AF4d00001041sv00001AF4sd00001041bc02sc00i00", []string{"virtio_pci"}},
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
		{"usb:v046DpC52Bd1211dc00dsc00dp00ic03isc01ip01in00", []string{"usbhid"}},
		{"acpi:PNP0C14:", []string{"wmi"}},
		{"pci:v00008086d00002020sv00008086sd00000000bc06sc00i00", nil}, // a host bridge: no module
		{"", nil},
	}
	for _, tc := range tests {
		if got := m.ModulesFor(tc.modalias); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ModulesFor(%q) = %v, want %v", tc.modalias, got, tc.want)
		}
	}
	// The 6.1 tree predates the RTL8126.
	old, err := ReadKernel("testdata/nodes/s/lib/modules/6.1.0-18-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if got := old.Matcher().ModulesFor("pci:v000010ECd00008126sv00001462sd00007D25bc02sc00i00"); got != nil {
		t.Errorf("6.1 matches the RTL8126 with %v", got)
	}
}

func TestModulesForIndexAgreesWithScan(t *testing.T) {
	k, err := ReadKernel("testdata/nodes/s/lib/modules/6.12.9-amd64")
	if err != nil {
		t.Fatal(err)
	}
	m := k.Matcher()
	h, err := ReadHardware("testdata/nodes/p/sys")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := ReadHardware("testdata/nodes/s/sys")
	if err != nil {
		t.Fatal(err)
	}
	for _, ma := range append(h.Modaliases(), h2.Modaliases()...) {
		var scan []string
		for _, a := range k.Aliases {
			if Glob(a.Pattern, ma) && !contains(scan, a.Module) {
				scan = append(scan, a.Module)
			}
		}
		if got := m.ModulesFor(ma); !reflect.DeepEqual(got, scan) {
			t.Errorf("%s: index %v, scan %v", ma, got, scan)
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

func TestReadKernel(t *testing.T) {
	k, err := ReadKernel("testdata/nodes/p/lib/modules/6.1.0-18-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.1.0-18-amd64" || k.Incomplete != "" {
		t.Errorf("release %q incomplete %q", k.Release, k.Incomplete)
	}
	igb := k.Module("igb")
	if igb == nil || igb.Path != "kernel/drivers/net/ethernet/intel/igb/igb.ko.xz" ||
		!reflect.DeepEqual(igb.Deps, []string{"dca", "ptp", "pps_core", "i2c_algo_bit"}) {
		t.Errorf("igb = %+v", igb)
	}
	if x := k.Module("xhci-pci"); x == nil || !x.Builtin || !reflect.DeepEqual(x.Firmware, []string{"renesas_usb_fw.mem"}) {
		t.Errorf("xhci_pci = %+v", x)
	}
	bad := t.TempDir()
	if err := writeFile(bad+"/modules.alias", "alias pci:v*d* e1000e\nalias only-two\n"); err != nil {
		t.Fatal(err)
	}
	_, err = ReadKernel(bad)
	if err == nil || !strings.Contains(err.Error(), "/modules.alias:2: not \"alias <pattern> <module>\"") {
		t.Errorf("corrupt modules.alias: %v", err)
	}
	if err := writeFile(bad+"/modules.alias", ""); err != nil {
		t.Fatal(err)
	}
	k, err = ReadKernel(bad)
	if err != nil || k.Incomplete != "no modules.dep (run depmod "+k.Release+")" {
		t.Errorf("no modules.dep: %v, %q", err, k.Incomplete)
	}
}

func TestModuleFirmware(t *testing.T) {
	want := []string{"rtl_nic/rtl8125a-3.fw", "rtl_nic/rtl8168h-2.fw", "rtl_nic/rtl8168e-3.fw", "rtl_nic/rtl8168d-1.fw"}
	for _, f := range []string{"r8169.ko", "r8169.ko.xz", "r8169.ko.zst", "r8169.ko.gz"} {
		t.Run(f, func(t *testing.T) {
			got, err := ModuleFirmware("testdata/modinfo/" + f)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSet(got, want) {
				t.Errorf("firmware %v, want %v", got, want)
			}
		})
	}
	if _, err := ModuleFirmware("testdata/host-status"); err == nil || !strings.Contains(err.Error(), "not a kernel module") {
		t.Errorf("not an ELF file: %v", err)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
