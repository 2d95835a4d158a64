package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTakeNodeP(t *testing.T) {
	inv := take(t, "testdata/nodes/p", "p")
	if inv.SchemaVersion != SchemaVersion || inv.Node != "p" || !inv.Taken.Equal(fixedNow) {
		t.Errorf("header %d %q %v", inv.SchemaVersion, inv.Node, inv.Taken)
	}
	if len(inv.Packages) != 11 {
		t.Errorf("%d packages, want 11", len(inv.Packages))
	}
	var held []string
	for _, p := range inv.Packages {
		if p.Held() {
			held = append(held, p.Name)
		}
	}
	if !reflect.DeepEqual(held, []string{"postgresql-15"}) {
		t.Errorf("held %v", held)
	}
	var entries []string
	for _, s := range inv.Sources {
		entries = append(entries, s.Entries()...)
	}
	wantEntries := []string{
		"deb http://deb.debian.org/debian bookworm main",
		"deb http://deb.debian.org/debian bookworm non-free-firmware",
		"deb-src http://deb.debian.org/debian bookworm main",
		"deb-src http://deb.debian.org/debian bookworm non-free-firmware",
		"deb http://security.debian.org/debian-security bookworm-security main",
		"deb http://security.debian.org/debian-security bookworm-security non-free-firmware",
		"deb http://apt.postgresql.org/pub/repos/apt bookworm-pgdg main",
	}
	if !reflect.DeepEqual(entries, wantEntries) {
		t.Errorf("apt entries\n%q\nwant\n%q", entries, wantEntries)
	}
	if len(inv.Sources) != 5 || !inv.Sources[4].Disabled || inv.Sources[3].Line != 1 || inv.Sources[4].Line != 8 {
		t.Errorf("sources %+v", inv.Sources)
	}
	if inv.RunningKernel != "6.1.0-18-amd64" || inv.DefaultKernel != "6.1.0-18-amd64" || len(inv.Kernels) != 1 {
		t.Errorf("kernels: running %q default %q installed %d", inv.RunningKernel, inv.DefaultKernel, len(inv.Kernels))
	}
	k := inv.Kernels[0]
	if m := k.Module("megaraid_sas"); m == nil || m.Package != "linux-image-6.1.0-18-amd64" || !m.FirmwareKnown {
		t.Errorf("megaraid_sas = %+v", m)
	}
	if m := k.Module("bnx2"); m == nil || m.FirmwareKnown {
		t.Errorf("bnx2 drives no device here, its firmware should not be read: %+v", m)
	}
	if k.Initramfs.State != Listed || !k.Initramfs.Has("megaraid_sas") || k.Initramfs.Has("nvme") {
		t.Errorf("initramfs %+v", k.Initramfs)
	}
	if !reflect.DeepEqual(inv.Loaded, []string{"ahci", "dca", "igb", "libahci", "libata", "megaraid_sas", "scsi_mod"}) {
		t.Errorf("loaded %v", inv.Loaded)
	}
	if len(inv.Firmware) != 5 || inv.FirmwarePackages["rtl_nic/rtl8168h-2.fw"] != "firmware-realtek" ||
		inv.FirmwarePackages["bnx2/bnx2-mips-09-6.2.1b.fw"] != "firmware-bnx2" {
		t.Errorf("firmware %v %v", inv.Firmware, inv.FirmwarePackages)
	}
	h := inv.Hardware
	if len(h.PCI) != 7 || !reflect.DeepEqual(h.Storage, []string{"0000:00:17.0", "0000:18:00.0"}) {
		t.Errorf("pci %d storage %v", len(h.PCI), h.Storage)
	}
	want := PCIDevice{Slot: "0000:18:00.0", Class: "010400", Vendor: "1000", Device: "005d", SubVendor: "1028", SubDevice: "1f49",
		Modalias: "pci:v00001000d0000005Dsv00001028sd00001F49bc01sc04i00", Driver: "megaraid_sas"}
	if h.PCI[4] != want {
		t.Errorf("raid controller\n%+v\nwant\n%+v", h.PCI[4], want)
	}
	wantNICs := []NIC{
		{Name: "br0", MAC: "b4:96:91:00:00:01"},
		{Name: "eno1", MAC: "b4:96:91:00:00:01", Driver: "igb", Physical: true, PCISlot: "0000:19:00.0"},
		{Name: "eno2", MAC: "b4:96:91:00:00:02", Driver: "igb", Physical: true, PCISlot: "0000:19:00.1"},
		{Name: "lo", MAC: "00:00:00:00:00:00"},
	}
	if !reflect.DeepEqual(h.NICs, wantNICs) {
		t.Errorf("nics\n%+v\nwant\n%+v", h.NICs, wantNICs)
	}
	if len(inv.Notes) != 0 {
		t.Errorf("notes %v", inv.Notes)
	}
}

// The merged-/usr dpkg lists of S name /usr/lib/modules; owners still map.
func TestTakeNodeSOwners(t *testing.T) {
	inv := take(t, "testdata/nodes/s", "s")
	k := inv.Kernel("6.12.9-amd64")
	if k == nil || inv.BootKernel() != k {
		t.Fatalf("boot kernel %v", inv.BootKernel())
	}
	if m := k.Module("r8169"); m == nil || m.Package != "linux-image-6.12.9-amd64" || !m.FirmwareKnown || len(m.Firmware) != 5 {
		t.Errorf("r8169 = %+v", m)
	}
	if inv.FirmwarePackages["rtl_nic/rtl8126a-2.fw"] != "firmware-realtek" {
		t.Errorf("firmware packages %v", inv.FirmwarePackages)
	}
}

// The sysfs of the machine these fixtures were captured on (a VM with
// virtio devices), and a root with nothing but a status file.
func TestTakeCapturedVM(t *testing.T) {
	h, err := ReadHardware("testdata/vm/sys")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.PCI) != 6 || !reflect.DeepEqual(h.Storage, []string{"0000:00:02.0"}) {
		t.Errorf("pci %+v storage %v", h.PCI, h.Storage)
	}
	if d := h.PCI[3]; d.Driver != "virtio-pci" || d.Modalias != "pci:v00001AF4d00001041sv00001AF4sd00001041bc02sc00i00" || !d.Network() {
		t.Errorf("virtio net device %+v", d)
	}
	if h.PCI[0].Driver != "" {
		t.Errorf("host bridge has driver %q", h.PCI[0].Driver)
	}
	want := NIC{Name: "eth0", MAC: "02:fc:00:00:00:01", Driver: "virtio_net", Physical: true, PCISlot: "0000:00:03.0"}
	if len(h.NICs) != 4 || h.NICs[0] != want || h.NICs[1].Physical {
		t.Errorf("nics %+v", h.NICs)
	}

	root := t.TempDir()
	if err := os.MkdirAll(root+"/var/lib/dpkg", 0o755); err != nil {
		t.Fatal(err)
	}
	host, _ := os.ReadFile("testdata/host-status")
	if err := os.WriteFile(root+"/var/lib/dpkg/status", host, 0o644); err != nil {
		t.Fatal(err)
	}
	inv := take(t, root, "bare")
	if len(inv.Packages) != 716 || len(inv.Kernels) != 0 || len(inv.Notes) != 4 {
		t.Errorf("%d packages, %d kernels, notes %q", len(inv.Packages), len(inv.Kernels), inv.Notes)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	for _, inv := range []*Inventory{p, s} {
		want, _ := json.Marshal(inv)
		for _, name := range []string{"inv.json", "inv.toml"} {
			path := filepath.Join(t.TempDir(), name)
			if err := Save(path, inv); err != nil {
				t.Fatal(err)
			}
			back, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(back)
			if !bytes.Equal(got, want) {
				t.Errorf("%s of %s does not round-trip", name, inv.Node)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "future.json")
	if err := os.WriteFile(path, []byte(`{"schema_version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "schema version 99") {
		t.Errorf("newer schema: %v", err)
	}
}

func TestUpdateKeepsLastGoodInventory(t *testing.T) {
	root := copyTree(t, "testdata/nodes/p")
	saved := filepath.Join(t.TempDir(), "inventory.toml")
	if _, err := Update(saved, nodeSources(root, "p")); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(saved)
	if err != nil {
		t.Fatal(err)
	}
	// dpkg was killed while writing: the status file ends mid-stanza.
	status := filepath.Join(root, "var/lib/dpkg/status")
	data, _ := os.ReadFile(status)
	if err := os.WriteFile(status, data[:bytes.Index(data, []byte("Version: 5.2.15"))], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Update(saved, nodeSources(root, "p"))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `status:12: package "bash": file ends without the blank line`) {
		t.Fatalf("Update on a truncated status: %v", err)
	}
	after, _ := os.ReadFile(saved)
	if !bytes.Equal(after, good) {
		t.Error("the saved inventory changed after a failed Update")
	}
	inv, err := Load(saved)
	if err != nil || len(inv.Packages) != 11 {
		t.Errorf("last good inventory: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(saved), ".*tmp*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestInitramfsModules(t *testing.T) {
	img := filepath.Join(t.TempDir(), "initrd.img-6.1.0-18-amd64")
	if got := InitramfsModules(img); got.State != StateUnknown || !strings.HasPrefix(got.Reason, "no image") {
		t.Errorf("no image: %+v", got)
	}
	if err := os.WriteFile(img, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ListInitramfs("sentry-no-such-lsinitramfs", img); got.State != StateUnknown || got.Reason != "sentry-no-such-lsinitramfs is not installed (package initramfs-tools-core)" {
		t.Errorf("no lsinitramfs: %+v", got)
	}
	// A fake lsinitramfs that prints a real listing.
	bin := filepath.Join(t.TempDir(), "lsinitramfs")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\ncat testdata/nodes/p/boot/initrd.img-6.1.0-18-amd64.lsinitramfs\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got := ListInitramfs(bin, img)
	want := []string{"ahci", "dca", "igb", "libahci", "libata", "megaraid_sas", "scsi_common", "scsi_mod"}
	if got.State != Listed || !reflect.DeepEqual(got.Modules, want) {
		t.Errorf("listed %+v, want %v", got, want)
	}
}
