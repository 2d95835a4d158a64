package disks

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestFindSATAPartitionsRAID1(t *testing.T) {
	s := find(t, sataServer(t))
	if got := names(s.Disks); !reflect.DeepEqual(got, []string{"sda", "sdb"}) {
		t.Fatalf("disks %v, want the md members sda, sdb (not sr0, the USB stick sdc, loop0, md*)", got)
	}
	if s.Note != "" {
		t.Errorf("note %q, want none", s.Note)
	}
	want := Disk{
		Name: "sda", Serial: "WD-WCC7K1234567", Model: "WDC WD40EFRX-68N32N0", WWN: "0x50014ee2b5a1c3d4",
		SizeBytes: 4000787030016, ByPath: "pci-0000:00:1f.2-ata-3", ByID: "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567",
		Arrays: []string{"md0 (sda1)", "md1 (sda2)"}, Rotational: true, Bus: "ata",
		Partitions: []Partition{
			{Name: "sda1", SizeBytes: 1000341504, Type: linuxRAID, FSType: "linux_raid_member", Label: "nas:0", Array: "md0"},
			{Name: "sda2", SizeBytes: 3999785811968, Type: linuxRAID, FSType: "linux_raid_member", Label: "nas:1", Array: "md1"},
		},
	}
	if !reflect.DeepEqual(s.Disks[0], want) {
		t.Errorf("sda\n got %+v\nwant %+v", s.Disks[0], want)
	}
	wantText := `sda  WDC WD40EFRX-68N32N0  serial WD-WCC7K1234567  4.0 TB
     by-path pci-0000:00:1f.2-ata-3   by-id ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567
     md0 (sda1), md1 (sda2)
sdb  WDC WD40EFRX-68N32N0  serial WD-WCC7K7654321  4.0 TB
     by-path pci-0000:00:1f.2-ata-4   by-id ata-WDC_WD40EFRX-68N32N0_WD-WCC7K7654321
     md0 (sdb1), md1 (sdb2)
`
	if got := s.Text(); got != wantText {
		t.Errorf("text\n got:\n%s\nwant:\n%s", got, wantText)
	}
}

// Each of the kernel's three records of md membership is enough alone.
func TestFindMembershipSources(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove []string
	}{
		{"md dev-* only", []string{"slaves", "holders"}},
		{"slaves only", []string{"md", "holders"}},
		{"holders only", []string{"md", "slaves"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sataServer(t)
			for _, r := range tc.remove {
				for _, md := range []string{"md0", "md1"} {
					if r != "holders" {
						f.remove("sys/devices/virtual/block/" + md + "/" + r)
						continue
					}
					for _, p := range []string{"sda/sda1", "sda/sda2", "sdb/sdb1", "sdb/sdb2"} {
						f.remove("sys/block/" + p + "/holders/" + md)
					}
				}
			}
			s := find(t, f)
			if got := names(s.Disks); !reflect.DeepEqual(got, []string{"sda", "sdb"}) {
				t.Fatalf("disks %v", got)
			}
			if got := s.Disks[1].Arrays; !reflect.DeepEqual(got, []string{"md0 (sdb1)", "md1 (sdb2)"}) {
				t.Errorf("sdb arrays %v", got)
			}
			if p := s.Disks[1].Partitions; len(p) != 2 || p[0].Array != "md0" || p[1].Array != "md1" {
				t.Errorf("sdb partitions %+v", p)
			}
		})
	}
}

// Without udev's entry the serial comes from VPD page 0x80 and the model
// from sysfs (which truncates an ATA model to 16 characters).
func TestFindNoUdevData(t *testing.T) {
	f := sataServer(t)
	f.remove("run/udev/data/b8:16")
	s := find(t, f)
	sdb := s.Disks[1]
	want := Disk{
		Name: "sdb", Serial: "WD-WCC7K7654321", Model: "WDC WD40EFRX-68N", WWN: "naa.50014ee20d1e2f3a",
		SizeBytes: 4000787030016, ByPath: "pci-0000:00:1f.2-ata-4", ByID: "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K7654321",
		Arrays: []string{"md0 (sdb1)", "md1 (sdb2)"}, Rotational: true,
		Partitions: []Partition{
			{Name: "sdb1", SizeBytes: 1000341504, Type: linuxRAID, FSType: "linux_raid_member", Label: "nas:0", Array: "md0"},
			{Name: "sdb2", SizeBytes: 3999785811968, Type: linuxRAID, FSType: "linux_raid_member", Label: "nas:1", Array: "md1"},
		},
	}
	if !reflect.DeepEqual(sdb, want) {
		t.Errorf("sdb\n got %+v\nwant %+v", sdb, want)
	}
}

// Without /dev/disk (udev's links not visible), udev's database still
// records them.
func TestFindLinksFromUdevDatabase(t *testing.T) {
	f := sataServer(t)
	f.remove("dev")
	sda := find(t, f).Disks[0]
	if sda.ByID != "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567" || sda.ByPath != "pci-0000:00:1f.2-ata-3" {
		t.Errorf("by-id %q by-path %q", sda.ByID, sda.ByPath)
	}
}
func TestFindNVMeWholeDiskRAID1(t *testing.T) {
	for _, multipath := range []bool{false, true} {
		t.Run("multipath="+strconv.FormatBool(multipath), func(t *testing.T) {
			f := nvmeServer(t, multipath)
			s := find(t, f)
			if got := names(s.Disks); !reflect.DeepEqual(got, []string{"nvme0n1", "nvme1n1"}) {
				t.Fatalf("disks %v, want the md0 members only", got)
			}
			want := []Disk{{
				Name: "nvme0n1", Serial: "S5GXNX0T123456A", Model: "Samsung SSD 980 PRO 1TB", WWN: "eui.002538b111b2c3d4",
				SizeBytes: 1000204886016, ByPath: "pci-0000:01:00.0-nvme-1", ByID: "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456A",
				Arrays: []string{"md0 (nvme0n1)"}, Bus: "nvme",
			}, {
				// No udev entry: serial, model and EUI from sysfs.
				Name: "nvme1n1", Serial: "S5GXNX0T654321B", Model: "Samsung SSD 980 PRO 1TB", WWN: "eui.002538b111b2c3e5",
				SizeBytes: 1000204886016, ByPath: "pci-0000:02:00.0-nvme-1", ByID: "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T654321B",
				Arrays: []string{"md0 (nvme1n1)"}, Bus: "nvme",
			}}
			if !reflect.DeepEqual(s.Disks, want) {
				t.Errorf("disks\n got %+v\nwant %+v", s.Disks, want)
			}
			wantText := `nvme0n1  Samsung SSD 980 PRO 1TB  serial S5GXNX0T123456A  1.0 TB
         by-path pci-0000:01:00.0-nvme-1   by-id nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456A
         md0 (nvme0n1)
`
			if got := (&Set{Disks: s.Disks[:1]}).Text(); got != wantText {
				t.Errorf("text\n got:\n%s\nwant:\n%s", got, wantText)
			}

			// Without the array every disk is listed, the hidden paths not.
			f.remove("sys/block/md0")
			f.remove("sys/devices/virtual/block/md0")
			for _, d := range []string{"nvme0n1", "nvme1n1"} {
				f.remove("sys/block/" + d + "/holders/md0")
			}
			s = find(t, f)
			if got := names(s.Disks); !reflect.DeepEqual(got, []string{"nvme0n1", "nvme1n1", "sda"}) || s.Note == "" {
				t.Errorf("without md0: disks %v, note %q", got, s.Note)
			}
		})
	}
}
func TestFindEnclosureBays(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remove []string
		bays   []string
	}{
		{"class enclosure and enclosure_device", nil, []string{"enclosure 0:0:1:0 slot 3", "enclosure 0:0:1:0 slot 4"}},
		// The slot's device link matched with the disk's device link.
		{"class enclosure only", []string{
			"sys/block/sda/device/enclosure_device:Slot 03", "sys/block/sdb/device/enclosure_device:Slot 04",
		}, []string{"enclosure 0:0:1:0 slot 3", "enclosure 0:0:1:0 slot 4"}},
		{"enclosure_device only", []string{"sys/class/enclosure"}, []string{"enclosure 0:0:1:0 slot 3", "enclosure 0:0:1:0 slot 4"}},
		{"no enclosure", []string{
			"sys/class/enclosure", "sys/block/sda/device/enclosure_device:Slot 03", "sys/block/sdb/device/enclosure_device:Slot 04",
		}, []string{"", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := sasServer(t)
			for _, r := range tc.remove {
				f.remove(r)
			}
			s := find(t, f)
			if got := names(s.Disks); !reflect.DeepEqual(got, []string{"sda", "sdb"}) {
				t.Fatalf("disks %v", got)
			}
			if got := []string{s.Disks[0].Bay, s.Disks[1].Bay}; !reflect.DeepEqual(got, tc.bays) {
				t.Errorf("bays %q, want %q", got, tc.bays)
			}
		})
	}
}

// A SAS disk's ID_SERIAL_SHORT is its NAA WWN; the label's serial is the
// unit serial (ID_SCSI_SERIAL).
func TestFindSASSerialAndByID(t *testing.T) {
	s := find(t, sasServer(t))
	sda, sdb := s.Disks[0], s.Disks[1]
	if sda.Serial != "ZC1AB2340000C8123ABC" || sda.Model != "ST4000NM0025" || sda.Vendor != "SEAGATE" || sda.WWN != "0x5000c500a1b2c3d4" {
		t.Errorf("sda %+v", sda)
	}
	if sda.ByID != "scsi-SSEAGATE_ST4000NM0025_ZC1AB2340000C8123ABC" {
		t.Errorf("sda by-id %q, want the one with the serial", sda.ByID)
	}
	if sdb.Serial != "ZC1CD5670000C8456DEF" || sdb.ByID != "wwn-0x5000c500e5f6a7b8" {
		t.Errorf("sdb serial %q by-id %q", sdb.Serial, sdb.ByID)
	}
	if !reflect.DeepEqual(sda.Arrays, []string{"md0 (sda1)"}) || !reflect.DeepEqual(sdb.Arrays, []string{"md0 (sdb1)"}) {
		t.Errorf("arrays %v %v", sda.Arrays, sdb.Arrays)
	}
	text := s.Text()
	if !strings.HasPrefix(text, "sda  SEAGATE ST4000NM0025  serial ZC1AB2340000C8123ABC  4.0 TB  bay: enclosure 0:0:1:0 slot 3\n") {
		t.Errorf("text:\n%s", text)
	}
}

// A VM like this sandbox: a virtio disk, zram, loop devices, a USB stick;
// no md arrays, so every non-removable disk is listed.
func TestFindNoMDListsEveryDisk(t *testing.T) {
	f := newFixture(t)
	vda := f.block("pci0000:00/0000:00:02.0/virtio1/block/vda", "pci0000:00/0000:00:02.0/virtio1", "254:0", 536870912, false, true)
	f.attrs(vda, "serial", "ci-disk-1")
	f.attrs("sys/devices/pci0000:00/0000:00:02.0/virtio1", "vendor", "0x1af4", "device", "0x0002", "features", "0100000000000000")
	f.partition(vda, 1, "254:1", 536868864)
	f.devLinks("by-id", "vda", "virtio-ci-disk-1")
	f.devLinks("by-path", "vda", "pci-0000:00:02.0", "virtio-pci-0000:00:02.0")
	usb := "pci0000:00/0000:00:14.0/usb1/1-4/1-4:1.0/host6/target6:0:0/6:0:0:0"
	f.block(usb+"/block/sda", usb, "8:0", 60063744, true, true)
	for i := 0; i < 4; i++ {
		f.block("virtual/block/loop"+strconv.Itoa(i), "", "7:"+strconv.Itoa(i), 0, false, true)
	}
	f.block("virtual/block/zram0", "", "252:0", 16777216, false, false)

	s := find(t, f)
	if got := names(s.Disks); !reflect.DeepEqual(got, []string{"vda"}) {
		t.Fatalf("disks %v, want vda only", got)
	}
	if s.Note != "no md arrays: every non-removable disk is listed" {
		t.Errorf("note %q", s.Note)
	}
	if d := s.Disks[0]; d.Serial != "ci-disk-1" || d.Vendor != "" || d.ByID != "virtio-ci-disk-1" || d.ByPath != "pci-0000:00:02.0" || d.SizeBytes != 274877906944 || len(d.Arrays) != 0 {
		t.Errorf("vda %+v", d)
	}
	if !strings.HasSuffix(s.Text(), "\nno md arrays: every non-removable disk is listed\n") {
		t.Errorf("text:\n%s", s.Text())
	}
}

func TestFindContainer(t *testing.T) {
	f := newFixture(t)
	f.dir("sys/block")
	s := find(t, f)
	if len(s.Disks) != 0 || !strings.Contains(s.Note, "no block devices under "+filepath.Join(f.root, "sys/block")) || !strings.Contains(s.Note, "container") {
		t.Errorf("%+v", s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `{"disks":[],"note":"no block devices`) {
		t.Errorf("json %s", b)
	}
	if s.Text() != s.Note+"\n" {
		t.Errorf("text %q", s.Text())
	}
}

func TestFindOnlyVirtualDevices(t *testing.T) {
	f := newFixture(t)
	f.block("virtual/block/loop1", "", "7:1", 0, false, true)
	f.block("virtual/block/loop0", "", "7:0", 0, false, true)
	f.block("virtual/block/zram0", "", "252:0", 0, false, false)
	s := find(t, f)
	if len(s.Disks) != 0 || !strings.Contains(s.Note, "no physical disks") || !strings.Contains(s.Note, "loop0, loop1, zram0") {
		t.Errorf("%+v", s)
	}
	// A USB stick is not a disk set either; the note names it.
	usb := "pci0000:00/0000:00:14.0/usb1/1-4/1-4:1.0/host6/target6:0:0/6:0:0:0"
	f.block(usb+"/block/sda", usb, "8:0", 60063744, true, true)
	s = find(t, f)
	if len(s.Disks) != 0 || !strings.Contains(s.Note, "loop0, loop1, sda, zram0") {
		t.Errorf("%+v", s)
	}
}

// md over loop devices (a test rig) names no disk.
func TestFindMDOnVirtualDevices(t *testing.T) {
	f := newFixture(t)
	l0 := f.block("virtual/block/loop0", "", "7:0", 204800, false, true)
	l1 := f.block("virtual/block/loop1", "", "7:1", 204800, false, true)
	f.md("md127", "9:127", 202752, l0, l1)
	s := find(t, f)
	if len(s.Disks) != 0 || !strings.Contains(s.Note, "md127") || !strings.Contains(s.Note, "no members on physical disks") {
		t.Errorf("%+v", s)
	}
}

func TestFindNoSys(t *testing.T) {
	root := t.TempDir()
	_, err := Find(Options{Root: root})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "sys", "block")) {
		t.Fatalf("err %v, want one naming %s", err, filepath.Join(root, "sys", "block"))
	}
}

func TestBestByID(t *testing.T) {
	for _, tc := range []struct {
		serial string
		names  []string
		want   string
	}{
		{"WD-WCC7K1234567", []string{"wwn-0x50014ee2b5a1c3d4", "scsi-SATA_WDC_WD40EFRX-68N_WD-WCC7K1234567", "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567", "scsi-0ATA_WDC_WD40EFRX-68N_WD-WCC7K1234567"}, "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567"},
		{"S5GXNX0T123456A", []string{"nvme-eui.002538b111b2c3d4", "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456A_1", "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456A"}, "nvme-Samsung_SSD_980_PRO_1TB_S5GXNX0T123456A"},
		{"", []string{"wwn-0x5000c500a1b2c3d4", "scsi-35000c500a1b2c3d4", "ata-X_Y"}, "ata-X_Y"},
		{"Z1", []string{"usb-SanDisk_Cruzer_Z1-0:0", "wwn-0x1"}, "usb-SanDisk_Cruzer_Z1-0:0"},
		{"Z1", nil, ""},
	} {
		if got := bestByID(tc.names, tc.serial); got != tc.want {
			t.Errorf("bestByID(%q) = %q, want %q", tc.names, got, tc.want)
		}
	}
}

func TestUdevText(t *testing.T) {
	u := map[string][]string{"ID_MODEL": {"WDC_WD40EFRX-68N32N0"}, "ID_MODEL_ENC": {`WDC\x20WD40EFRX-68N32N0\x20\x20`}}
	if got := udevText(u, "ID_MODEL"); got != "WDC WD40EFRX-68N32N0" {
		t.Errorf("with _ENC: %q", got)
	}
	delete(u, "ID_MODEL_ENC")
	if got := udevText(u, "ID_MODEL"); got != "WDC WD40EFRX-68N32N0" {
		t.Errorf("without _ENC: %q", got)
	}
	u = map[string][]string{"ID_MODEL": {"Model_With_Underscore"}, "ID_MODEL_ENC": {`Model_With_Underscore\x5c`}}
	if got := udevText(u, "ID_MODEL"); got != `Model_With_Underscore\` {
		t.Errorf("underscores kept when _ENC is there: %q", got)
	}
}

func TestNaturalOrder(t *testing.T) {
	got := sortNatural([]string{"md10 (sda3)", "nvme10n1", "md2 (sda2)", "nvme2n1", "sdb", "sda"})
	want := []string{"md2 (sda2)", "md10 (sda3)", "nvme2n1", "nvme10n1", "sda", "sdb"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q", got)
	}
	var nilSet *Set
	if nilSet.Text() != "" {
		t.Error("nil set text")
	}
}
