package disks

import (
	"os"
	"path/filepath"
	"testing"
)

// testdata/server is the sysfs and udev database of a server with two
// SATA disks (ESP, md0, md1 each), the second in enclosure bay "Slot 02",
// and one NVMe disk outside the arrays; loop, md and sr devices beside.
func TestScanServer(t *testing.T) {
	ds, err := Scan(Options{Root: "testdata/server"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 {
		t.Fatalf("%d disks, want sda, sdb, nvme0n1: %+v", len(ds), ds)
	}
	nv, a, b := ds[0], ds[1], ds[2]
	if a.Name != "sda" || b.Name != "sdb" || nv.Name != "nvme0n1" {
		t.Fatalf("names %s %s %s", nv.Name, a.Name, b.Name)
	}
	want := "/dev/sdb, ST4000NM0035-1V4107, 4.0 TB, serial ZC1EF3GH, bay Slot 02, port pci-0000:00:17.0-ata-2, member of md0, md1"
	if got := b.Label(); got != want {
		t.Errorf("label\n got %s\nwant %s", got, want)
	}
	if a.Bay != "" || a.Bus != "ata" || !a.Rotational || a.WWN != "0x5000c500a1b2c3d4" {
		t.Errorf("sda: %+v", a)
	}
	if len(a.Partitions) != 3 || !a.Partitions[0].ESP || a.Partitions[0].FSType != "vfat" || a.Partitions[1].Array != "md0" || a.Partitions[2].Array != "md1" {
		t.Errorf("sda partitions: %+v", a.Partitions)
	}
	if a.Partitions[0].SizeBytes != 512<<20 {
		t.Errorf("ESP size %d", a.Partitions[0].SizeBytes)
	}
	if nv.Bus != "nvme" || nv.Serial != "S5GXNX0T123456A" || nv.Rotational || len(nv.Arrays) != 0 || nv.ByPath != "pci-0000:01:00.0-nvme-1" {
		t.Errorf("nvme: %+v", nv)
	}
}

// In a container (the lab) there is no udev database: disks are named
// from sysfs alone, and no block devices at all is no disks.
func TestNoUdevNoDisks(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "sys/block/loop0"), 0o755); err != nil {
		t.Fatal(err)
	}
	ds, err := Scan(Options{Root: root})
	if err != nil || len(ds) != 0 {
		t.Fatalf("%v %v", ds, err)
	}
	if _, err := Scan(Options{Root: filepath.Join(root, "none")}); err == nil {
		t.Fatal("no sysfs gave no error")
	}
}

func TestHuman(t *testing.T) {
	for in, want := range map[int64]string{999: "999 B", 4000787030016: "4.0 TB", 512110190592: "512.1 GB"} {
		if got := Human(in); got != want {
			t.Errorf("Human(%d) = %s, want %s", in, got, want)
		}
	}
}
