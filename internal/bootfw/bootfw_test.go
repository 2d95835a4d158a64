package bootfw

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sentryha/sentry/internal/disks"
)

// dirs mounts each device at a fixture folder.
type dirs map[string]string

func (d dirs) Mount(dev string) (string, func(), error) {
	if p, ok := d[dev]; ok {
		return p, func() {}, nil
	}
	return "", nil, fmt.Errorf("mount %s: no such device", dev)
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// serverDisks are the disks of internal/disks' captured server tree.
func serverDisks(t *testing.T) []disks.Disk {
	ds, err := disks.Scan(disks.Options{Root: "../disks/testdata/server"})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestUEFI(t *testing.T) {
	root := t.TempDir()
	write(t, root, "sys/firmware/efi/fw_platform_size", "64\n")
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		write(t, d, "EFI/debian/shimx64.efi", "shim")
		write(t, d, "EFI/debian/grubx64.efi", "grub")
	}
	write(t, a, "EFI/BOOT/BOOTX64.EFI", "shim")
	m := dirs{"/dev/sda1": a, "/dev/sdb1": b}

	r, err := Inspect(Options{Root: root, Mounter: m}, serverDisks(t))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "uefi" || len(r.ESPs) != 2 {
		t.Fatalf("%+v", r)
	}
	if !r.ESPs[0].Fallback || r.ESPs[1].Fallback {
		t.Errorf("fallback: sda1 %v (want true), sdb1 %v (want false)", r.ESPs[0].Fallback, r.ESPs[1].Fallback)
	}
	if r.ESPs[0].Digest == r.ESPs[1].Digest {
		t.Error("ESPs with other files have the same digest")
	}

	// The installer's lower-case copy counts, and ESPs with the same
	// files agree whatever the case of their names.
	write(t, b, "efi/boot/bootx64.efi", "shim")
	r, _ = Inspect(Options{Root: root, Mounter: m}, serverDisks(t))
	if !r.ESPs[1].Fallback {
		t.Error("efi/boot/bootx64.efi not found")
	}
	if r.ESPs[0].Digest != r.ESPs[1].Digest {
		t.Errorf("ESPs in step have digests %s and %s", r.ESPs[0].Digest, r.ESPs[1].Digest)
	}

	// An empty loader file is no loader; an ESP that cannot be read says why.
	write(t, a, "EFI/BOOT/BOOTX64.EFI", "")
	delete(m, "/dev/sdb1")
	r, _ = Inspect(Options{Root: root, Mounter: m}, serverDisks(t))
	if r.ESPs[0].Fallback || r.ESPs[1].Err != "mount /dev/sdb1: no such device" {
		t.Errorf("%+v", r.ESPs)
	}
}

func mbr(grub bool) []byte {
	b := make([]byte, 512)
	if grub {
		copy(b[0x180:], "GRUB \x00Geom\x00Hard Disk\x00Read\x00 Error")
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

func TestBIOS(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "dev/sda"), append(mbr(true), make([]byte, 4096)...), 0o644)
	os.WriteFile(filepath.Join(root, "dev/sdb"), mbr(false), 0o644)
	r, err := Inspect(Options{Root: root}, serverDisks(t))
	if err != nil {
		t.Fatal(err)
	}
	// nvme0n1 is in no array: not a member of the disk set.
	if r.Mode != "bios" || len(r.GRUB) != 2 || !r.GRUB["/dev/sda"] || r.GRUB["/dev/sdb"] {
		t.Fatalf("%+v", r)
	}
	os.Remove(filepath.Join(root, "dev/sdb"))
	if _, err := Inspect(Options{Root: root}, serverDisks(t)); err == nil {
		t.Fatal("an unreadable member disk gave no error")
	}
}

// Without md arrays every non-removable disk is the disk set: not a USB
// stick.
func TestBIOSNoArrays(t *testing.T) {
	root := t.TempDir()
	write(t, root, "dev/sda", string(mbr(true)))
	write(t, root, "dev/sdb", string(mbr(false)))
	r, err := Inspect(Options{Root: root}, []disks.Disk{{Name: "sda"}, {Name: "sdb", Removable: true}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "bios" || len(r.GRUB) != 1 || !r.GRUB["/dev/sda"] {
		t.Fatalf("%+v", r)
	}
	r, err = Inspect(Options{Root: root}, []disks.Disk{{Name: "sdb", Removable: true}})
	if err != nil || r.Mode != "none" {
		t.Fatalf("only a USB stick: %+v %v", r, err)
	}
}

func TestContainerHasNoLoader(t *testing.T) {
	r, err := Inspect(Options{Root: t.TempDir()}, nil)
	if err != nil || r.Mode != "none" {
		t.Fatalf("%+v %v", r, err)
	}
}
