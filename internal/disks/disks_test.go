package disks

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
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
	// sdb's enclosure_device link points into an enclosure the capture
	// does not have: its names still give the bay.
	want := "/dev/sdb, ST4000NM0035-1V4107, 4.0 TB, serial ZC1EF3GH, enclosure 0:0:2:0 slot 2, port pci-0000:00:17.0-ata-2, member of md0 (sdb2), md1 (sdb3)"
	if got := b.Label(); got != want {
		t.Errorf("label\n got %s\nwant %s", got, want)
	}
	if a.Bay != "" || a.Bus != "ata" || !a.Rotational || a.WWN != "0x5000c500a1b2c3d4" || a.Vendor != "" ||
		a.ByID != "ata-ST4000NM0035-1V4107_ZC1AB2CD" || a.ByPath != "pci-0000:00:17.0-ata-1" {
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

	// The disk set: sda and sdb, the NVMe disk being in no array.
	s, err := Find(Options{Root: "testdata/server"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(s.Disks); !reflect.DeepEqual(got, []string{"sda", "sdb"}) || s.Note != "" {
		t.Errorf("disk set %v, note %q", got, s.Note)
	}
}

// Scan lists every physical disk, removable ones and those outside the
// arrays too, with their partitions; never optical drives, loop, md or
// the hidden per-path devices of NVMe multipath.
func TestScanAllDisks(t *testing.T) {
	ds, err := Scan(Options{Root: sataServer(t).root})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ds); !reflect.DeepEqual(got, []string{"sda", "sdb", "sdc"}) {
		t.Fatalf("disks %v, want sda, sdb and the USB stick sdc", got)
	}
	sdc := ds[2]
	if !sdc.Removable || sdc.Vendor != "SanDisk" || sdc.Model != "Cruzer Blade" || len(sdc.Arrays) != 0 ||
		len(sdc.Partitions) != 1 || sdc.Partitions[0].Name != "sdc1" || sdc.Partitions[0].Array != "" {
		t.Errorf("sdc %+v", sdc)
	}
	if want := "/dev/sdc, SanDisk Cruzer Blade, 30.8 GB"; sdc.Label() != want {
		t.Errorf("label %q, want %q", sdc.Label(), want)
	}

	ds, err = Scan(Options{Root: nvmeServer(t, true).root})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Name+" "+d.Bus)
	}
	if !reflect.DeepEqual(got, []string{"nvme0n1 nvme", "nvme1n1 nvme", "sda ata"}) {
		t.Errorf("disks %v, want the namespaces, not their paths nvme0c0n1, nvme1c1n1", got)
	}
}

// Partitions come in natural order: sda2 before sda10.
func TestScanPartitionOrder(t *testing.T) {
	f := newFixture(t)
	dev := "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"
	dir := f.block(dev+"/block/sda", dev, "8:0", 7814037168, false, true)
	for _, n := range []int{10, 2, 1, 11} {
		f.partition(dir, n, "8:"+strconv.Itoa(n), 2048)
	}
	ds, err := Scan(Options{Root: f.root})
	if err != nil || len(ds) != 1 {
		t.Fatalf("%+v %v", ds, err)
	}
	var got []string
	for _, p := range ds[0].Partitions {
		got = append(got, p.Name)
	}
	if !reflect.DeepEqual(got, []string{"sda1", "sda2", "sda10", "sda11"}) {
		t.Errorf("partitions %v", got)
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
	for n, want := range map[int64]string{
		0:              "0 B",
		999:            "999 B",
		1500:           "2 kB",
		536870912:      "537 MB",
		32017047552:    "32.0 GB",
		500107862016:   "500 GB",
		512110190592:   "512 GB",
		960197124096:   "960 GB",
		1000204886016:  "1.0 TB",
		1920383410176:  "1.92 TB",
		4000787030016:  "4.0 TB",
		12000138625024: "12.0 TB",
	} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
}
