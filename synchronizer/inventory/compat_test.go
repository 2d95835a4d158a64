package inventory

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func verdicts(r CompatReport) map[string]string {
	m := map[string]string{}
	for _, d := range r.Devices {
		m[d.Slot] = d.Verdict + " " + d.Cause
	}
	return m
}

func TestCompatOwnMachine(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	for _, inv := range []*Inventory{p, s} {
		r := Compat(inv, &inv.Hardware)
		if r.Boots != "yes" {
			t.Errorf("disk set %s on its own machine: %s", inv.Node, r.Text())
		}
	}
	r := Compat(p, &p.Hardware)
	want := map[string]string{
		"0000:00:00.0": "not-required ", // host bridge: no module, no driver
		"0000:00:1c.0": "ok ",           // pcieport, in every kernel
		"0000:00:14.0": "ok ",           // xhci_pci, built in
		"0000:00:17.0": "ok ",
		"0000:18:00.0": "ok ",
		"0000:19:00.0": "ok ",
		"0000:19:00.1": "ok ",
	}
	if got := verdicts(r); !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts %v, want %v", got, want)
	}
	raid := r.Devices[4]
	if raid.Module != "megaraid_sas" || raid.Initramfs != "yes" || raid.Kind != "storage" || !raid.Required {
		t.Errorf("raid evidence %+v", raid)
	}
	if usb := r.Devices[1]; usb.Initramfs != "" || !reflect.DeepEqual(usb.MissingFirmware, []string{"renesas_usb_fw.mem"}) {
		t.Errorf("usb evidence %+v", usb)
	}
}

// Disk set P on S's machine fails (no module for the RTL8126 in 6.1, no
// nvme in P's initramfs) and boots once P has S's newer kernel, whose
// initramfs was built with the NVMe driver.
func TestCompatMissingModuleThenAdded(t *testing.T) {
	root := copyTree(t, "testdata/nodes/p")
	p, s := takePair(t, root, "testdata/nodes/s")
	r := Compat(p, &s.Hardware)
	if r.Boots != "no" || r.Kernel != "6.1.0-18-amd64" {
		t.Fatalf("boots %s on %s", r.Boots, r.Kernel)
	}
	got := verdicts(r)
	if got["0000:03:00.0"] != "fail no-module" || got["0000:01:00.0"] != "fail not-in-initramfs" || got["0000:00:1f.4"] != "not-required " {
		t.Errorf("verdicts %v", got)
	}
	if len(r.Because) != 2 || !strings.Contains(r.Because[1], "no module in 6.1.0-18-amd64 matches pci:v000010ECd00008126") {
		t.Errorf("because %q", r.Because)
	}
	text := r.Text()
	if !strings.HasPrefix(text, "disk set p (6.1.0-18-amd64) boots on this machine: no, because\n") {
		t.Errorf("text:\n%s", text)
	}

	// Install S's kernel on P (its files, its dpkg list, an initramfs
	// made with the nvme driver).
	rel := "6.12.9-amd64"
	src := copyTree(t, "testdata/nodes/s")
	if err := os.Rename(filepath.Join(src, "lib/modules", rel), filepath.Join(root, "lib/modules", rel)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"var/lib/dpkg/info/linux-image-" + rel + ".list", "boot/initrd.img-" + rel + ".lsinitramfs"} {
		if err := os.Rename(filepath.Join(src, f), filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(root, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	p, s = takePair(t, root, "testdata/nodes/s")
	r = Compat(p, &s.Hardware)
	if r.Boots != "yes" || r.Kernel != rel {
		t.Fatalf("after adding %s: %s", rel, r.Text())
	}
	nic := r.Devices[6]
	if nic.Module != "r8169" || nic.Initramfs != "yes" || len(nic.Firmware) != 5 || len(nic.MissingFirmware) != 1 {
		t.Errorf("nic evidence %+v", nic)
	}

	// Without firmware-realtek the RTL8126 has none of its firmware.
	if err := os.RemoveAll(filepath.Join(root, "lib/firmware/rtl_nic")); err != nil {
		t.Fatal(err)
	}
	p = take(t, root, "p", s)
	r = Compat(p, &s.Hardware)
	if r.Boots != "no" || verdicts(r)["0000:03:00.0"] != "fail missing-firmware" {
		t.Errorf("without firmware: %s", r.Text())
	}
}

func TestCompatUnknown(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	// Firmware needs of S's devices not read: P's inventory taken alone.
	alone := take(t, "testdata/nodes/p", "p")
	if r := Compat(alone, &s.Hardware); r.Boots != "no" {
		t.Errorf("no still wins over unknown: %s", r.Boots)
	}
	// Initramfs not listed: storage is unknown, not ok.
	src := nodeSources("testdata/nodes/s", "s")
	src.Initramfs = nil
	src.Modaliases = p.Hardware.Modaliases()
	noInitramfs, err := Take(src)
	if err != nil {
		t.Fatal(err)
	}
	r := Compat(noInitramfs, &s.Hardware)
	if r.Boots != StateUnknown || verdicts(r)["0000:01:00.0"] != "unknown initramfs-unknown" {
		t.Errorf("initramfs unknown: %s", r.Text())
	}
	// No kernel at all.
	bare := *p
	bare.Kernels = nil
	if r := Compat(&bare, &p.Hardware); r.Boots != StateUnknown || r.Devices[4].Cause != CauseNoKernel {
		t.Errorf("no kernel: %s", r.Text())
	}
	if r := Compat(nil, &p.Hardware); r.Boots != StateUnknown {
		t.Errorf("nil inventory: %+v", r)
	}
	b, err := json.Marshal(Compat(p, &s.Hardware))
	if err != nil || !strings.Contains(string(b), `"boots":"no"`) || !strings.Contains(string(b), `"cause":"no-module"`) {
		t.Errorf("json %s %v", b, err)
	}
}
