package disks

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixture builds a root tree the way the kernel, udev and /dev lay it out:
// device directories under sys/devices, sys/block and sys/class/block
// linking to them, relative symlinks throughout.
type fixture struct {
	t    *testing.T
	root string
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, root: t.TempDir()}
}

func (f *fixture) file(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) dir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Join(f.root, rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

// link makes rel a symlink to target (both relative to the root), written
// as the relative path sysfs uses ("../../../2:0:0:0").
func (f *fixture) link(rel, target string) {
	f.t.Helper()
	r, err := filepath.Rel(filepath.Dir(rel), target)
	if err != nil {
		f.t.Fatal(err)
	}
	if strings.Trim(r, "./") == "" { // to an ancestor: the kernel writes "../../../2:0:0:0"
		r += "/../" + filepath.Base(target)
	}
	f.rawLink(rel, r)
}

func (f *fixture) rawLink(rel, target string) {
	f.t.Helper()
	f.dir(filepath.Dir(rel))
	if err := os.Symlink(target, filepath.Join(f.root, rel)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) remove(rel string) {
	f.t.Helper()
	if err := os.RemoveAll(filepath.Join(f.root, rel)); err != nil {
		f.t.Fatal(err)
	}
}

// attrs writes name, value pairs as attribute files under dir.
func (f *fixture) attrs(dir string, kv ...string) {
	f.t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		f.file(dir+"/"+kv[i], kv[i+1]+"\n")
	}
}

// block lays out a whole block device at sys/devices/<devpath>, its device
// link to sys/devices/<device> ("" for none, as virtual devices), and the
// sys/block and sys/class/block links. It returns its directory.
func (f *fixture) block(devpath, device, majmin string, sectors uint64, removable, rotational bool) string {
	f.t.Helper()
	dir := "sys/devices/" + devpath
	name := filepath.Base(devpath)
	f.attrs(dir, "dev", majmin, "size", strconv.FormatUint(sectors, 10),
		"removable", b01(removable), "queue/rotational", b01(rotational), "ro", "0",
		"uevent", "MAJOR="+strings.Split(majmin, ":")[0]+"\nMINOR="+strings.Split(majmin, ":")[1]+"\nDEVNAME="+name+"\nDEVTYPE=disk")
	f.dir(dir + "/holders")
	f.dir(dir + "/slaves")
	if device != "" {
		f.link(dir+"/device", "sys/devices/"+device)
	}
	f.link("sys/block/"+name, dir)
	f.link("sys/class/block/"+name, dir)
	return dir
}

// partition lays out partition n of the disk at diskDir: sda1, nvme0n1p1.
func (f *fixture) partition(diskDir string, n int, majmin string, sectors uint64) string {
	f.t.Helper()
	disk := filepath.Base(diskDir)
	name := disk + strconv.Itoa(n)
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		name = disk + "p" + strconv.Itoa(n)
	}
	dir := diskDir + "/" + name
	f.attrs(dir, "partition", strconv.Itoa(n), "dev", majmin, "size", strconv.FormatUint(sectors, 10), "start", "2048")
	f.dir(dir + "/holders")
	f.link("sys/class/block/"+name, dir)
	return dir
}

// md lays out an md RAID1 array over the members' sysfs directories as the
// kernel does: md/dev-<member>/block, slaves/<member> and the member's
// holders/<md>.
func (f *fixture) md(name, majmin string, sectors uint64, members ...string) {
	f.t.Helper()
	dir := f.block("virtual/block/"+name, "", majmin, sectors, false, false)
	f.attrs(dir, "md/level", "raid1", "md/array_state", "clean", "md/raid_disks", strconv.Itoa(len(members)))
	for i, m := range members {
		mn := filepath.Base(m)
		f.link(dir+"/md/dev-"+mn+"/block", m)
		f.attrs(dir+"/md/dev-"+mn, "slot", strconv.Itoa(i), "state", "in_sync")
		f.link(dir+"/slaves/"+mn, m)
		f.link(m+"/holders/"+name, dir)
	}
}

func (f *fixture) udev(majmin string, lines ...string) {
	f.file("run/udev/data/b"+majmin, strings.Join(lines, "\n")+"\n")
}

// devLinks makes udev's /dev/disk/<kind>/<name> -> ../../<dev> links.
func (f *fixture) devLinks(kind, dev string, names ...string) {
	for _, n := range names {
		f.rawLink("dev/disk/"+kind+"/"+n, "../../"+dev)
	}
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// enc is udev's \x20 encoding of a space-padded ATA/SCSI string.
func enc(s string, width int) string {
	return strings.ReplaceAll(s+strings.Repeat(" ", max(0, width-len(s))), " ", `\x20`)
}

// vpd80 is a SCSI VPD page 0x80 as sysfs dumps it; libata pads the ATA
// serial to 20 characters.
func vpd80(serial string) string {
	s := strings.Repeat(" ", max(0, 20-len(serial))) + serial
	return string([]byte{0, 0x80, 0, byte(len(s))}) + s
}

// linuxRAID is the GPT partition type of a Linux RAID member, as Scan
// reports it (lower case).
const linuxRAID = "a19d880f-05fc-4d3b-a006-743f0f84911e"

// ataUdev is udev's database entry of a SATA disk (ata_id), the way
// Debian 12's systemd writes it.
func ataUdev(model, serial, wwn, port string) []string {
	id := strings.ReplaceAll(model, " ", "_") + "_" + serial
	return []string{
		"S:disk/by-id/wwn-" + wwn,
		"S:disk/by-path/" + port + ".0",
		"S:disk/by-id/ata-" + id,
		"S:disk/by-path/" + port,
		"W:4",
		"I:6253841",
		"E:ID_ATA=1",
		"E:ID_TYPE=disk",
		"E:ID_BUS=ata",
		"E:ID_MODEL=" + strings.ReplaceAll(model, " ", "_"),
		"E:ID_MODEL_ENC=" + enc(model, 40),
		"E:ID_REVISION=82.00A82",
		"E:ID_SERIAL=" + id,
		"E:ID_SERIAL_SHORT=" + serial,
		"E:ID_ATA_ROTATION_RATE_RPM=5400",
		"E:ID_WWN=" + wwn,
		"E:ID_WWN_WITH_EXTENSION=" + wwn,
		"E:ID_PATH=" + port + ".0",
		"E:ID_PATH_TAG=" + strings.NewReplacer(":", "_", ".", "_").Replace(port) + "_0",
		"E:ID_PATH_ATA_COMPAT=" + port,
		"E:ID_PART_TABLE_TYPE=gpt",
		"G:systemd",
		"Q:systemd",
		"V:1",
	}
}

// sataServer is a Debian server with two WD Red disks on the chipset's
// AHCI controller (ports 3 and 4), each partitioned (GPT, Linux RAID) into
// md0 and md1 (RAID1), plus a DVD drive, a USB stick and a loop device.
func sataServer(t *testing.T) *fixture {
	f := newFixture(t)
	const ahci = "pci0000:00/0000:00:1f.2"
	disks := []struct{ name, port, scsi, majmin, serial, wwn string }{
		{"sda", "3", "2:0:0:0", "8:0", "WD-WCC7K1234567", "0x50014ee2b5a1c3d4"},
		{"sdb", "4", "3:0:0:0", "8:16", "WD-WCC7K7654321", "0x50014ee20d1e2f3a"},
	}
	var parts [2][]string
	for _, d := range disks {
		host := "host" + strings.Split(d.scsi, ":")[0]
		dev := ahci + "/ata" + d.port + "/" + host + "/target" + strings.TrimSuffix(d.scsi, ":0") + "/" + d.scsi
		dir := f.block(dev+"/block/"+d.name, dev, d.majmin, 7814037168, false, true)
		f.attrs("sys/devices/"+dev, "vendor", "ATA     ", "model", "WDC WD40EFRX-68N", "rev", "0A82",
			"wwid", "naa."+strings.TrimPrefix(d.wwn, "0x"), "vpd_pg80", vpd80(d.serial))
		minor, _ := strconv.Atoi(strings.Split(d.majmin, ":")[1])
		parts[0] = append(parts[0], f.partition(dir, 1, "8:"+strconv.Itoa(minor+1), 1953792))
		parts[1] = append(parts[1], f.partition(dir, 2, "8:"+strconv.Itoa(minor+2), 7812081664))
		port := "pci-0000:00:1f.2-ata-" + d.port
		f.udev(d.majmin, ataUdev("WDC WD40EFRX-68N32N0", d.serial, d.wwn, port)...)
		id := "ata-WDC_WD40EFRX-68N32N0_" + d.serial
		f.devLinks("by-id", d.name, id, "wwn-"+d.wwn)
		f.devLinks("by-path", d.name, port, port+".0")
		for p := 1; p <= 2; p++ {
			pn := d.name + strconv.Itoa(p)
			f.devLinks("by-id", pn, id+"-part"+strconv.Itoa(p), "wwn-"+d.wwn+"-part"+strconv.Itoa(p))
			f.devLinks("by-path", pn, port+"-part"+strconv.Itoa(p), port+".0-part"+strconv.Itoa(p))
			f.udev("8:"+strconv.Itoa(minor+p), "S:disk/by-id/"+id+"-part"+strconv.Itoa(p), "S:disk/by-path/"+port+"-part"+strconv.Itoa(p),
				"E:ID_PART_ENTRY_SCHEME=gpt", "E:ID_PART_ENTRY_TYPE=A19D880F-05FC-4D3B-A006-743F0F84911E",
				"E:ID_PART_ENTRY_NUMBER="+strconv.Itoa(p), "E:ID_FS_TYPE=linux_raid_member", "E:ID_FS_USAGE=raid",
				"E:ID_FS_LABEL=nas:"+strconv.Itoa(p-1), "E:ID_FS_LABEL_ENC=nas:"+strconv.Itoa(p-1))
		}
	}
	f.md("md0", "9:0", 1951744, parts[0]...)
	f.md("md1", "9:1", 7812079616, parts[1]...)

	dvd := ahci + "/ata1/host0/target0:0:0/0:0:0:0"
	f.block(dvd+"/block/sr0", dvd, "11:0", 2097151, true, true)
	f.attrs("sys/devices/"+dvd, "vendor", "HL-DT-ST", "model", "DVD+-RW GHB0N")
	f.devLinks("by-id", "sr0", "ata-HL-DT-ST_DVD+-RW_GHB0N_K1234567890")

	usb := "pci0000:00/0000:00:14.0/usb1/1-4/1-4:1.0/host6/target6:0:0/6:0:0:0"
	stick := f.block(usb+"/block/sdc", usb, "8:32", 60063744, true, true)
	f.partition(stick, 1, "8:33", 60061696)
	f.attrs("sys/devices/"+usb, "vendor", "SanDisk ", "model", "Cruzer Blade    ")
	f.devLinks("by-id", "sdc", "usb-SanDisk_Cruzer_Blade_4C530001234567891234-0:0")

	f.block("virtual/block/loop0", "", "7:0", 0, false, true)
	return f
}

func find(t *testing.T, f *fixture) *Set {
	t.Helper()
	s, err := Find(Options{Root: f.root})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func names(ds []Disk) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// nvmeServer has two Samsung NVMe disks, whole disks in md0 (RAID1), and a
// SATA boot SSD outside any array. nvme1n1 has no udev entry. With
// multipath (nvme_core.multipath=Y, Debian's default) the namespaces are
// under devices/virtual/nvme-subsystem, their device the subsystem, and a
// hidden per-path device nvmeXcYn1 sits under each controller.
func nvmeServer(t *testing.T, multipath bool) *fixture {
	f := newFixture(t)
	var members []string
	for i, d := range []struct{ bridge, pci, serial, eui string }{
		{"0000:00:01.1", "0000:01:00.0", "S5GXNX0T123456A", "002538b111b2c3d4"},
		{"0000:00:01.2", "0000:02:00.0", "S5GXNX0T654321B", "002538b111b2c3e5"},
	} {
		n := strconv.Itoa(i)
		ctrl := "pci0000:00/" + d.bridge + "/" + d.pci + "/nvme/nvme" + n
		name := "nvme" + n + "n1"
		ident := []string{"serial", d.serial + "     ", "model", "Samsung SSD 980 PRO 1TB                 ", "firmware_rev", "5B2QGXA7"}
		f.attrs("sys/devices/"+ctrl, append(ident, "address", d.pci, "cntlid", "6")...)
		parent := ctrl
		if multipath {
			parent = "virtual/nvme-subsystem/nvme-subsys" + n
			f.attrs("sys/devices/"+parent, append(ident, "subsysnqn", "nqn.1994-11.com.samsung:nvme:980PRO:M.2:"+d.serial, "iopolicy", "numa")...)
			f.link("sys/devices/"+parent+"/nvme"+n, "sys/devices/"+ctrl)
			path := f.block(ctrl+"/nvme"+n+"c"+n+"n1", ctrl, "0:0", 1953525168, false, false)
			f.remove(path + "/dev")
			f.attrs(path, "hidden", "1")
		}
		dir := f.block(parent+"/"+name, parent, "259:"+n, 1953525168, false, false)
		f.attrs(dir, "wwid", "eui."+d.eui, "nsid", "1", "hidden", "0")
		members = append(members, dir)
		id := "nvme-Samsung_SSD_980_PRO_1TB_" + d.serial
		f.devLinks("by-id", name, id, id+"_1", "nvme-eui."+d.eui)
		f.devLinks("by-path", name, "pci-"+d.pci+"-nvme-1")
		if i == 0 {
			f.udev("259:"+n,
				"S:disk/by-id/nvme-eui."+d.eui, "S:disk/by-path/pci-"+d.pci+"-nvme-1", "S:disk/by-id/"+id, "S:disk/by-id/"+id+"_1",
				"I:5311234", "E:ID_SERIAL_SHORT="+d.serial, "E:ID_WWN=eui."+d.eui, "E:ID_MODEL=Samsung SSD 980 PRO 1TB",
				"E:ID_REVISION=5B2QGXA7", "E:ID_SERIAL=Samsung SSD 980 PRO 1TB_"+d.serial, "E:ID_NSID=1",
				"E:ID_PATH=pci-"+d.pci+"-nvme-1", "E:ID_FS_TYPE=linux_raid_member", "G:systemd", "Q:systemd", "V:1")
		}
	}
	f.md("md0", "9:0", 1953260544, members...)

	dev := "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0"
	boot := f.block(dev+"/block/sda", dev, "8:0", 468862128, false, false)
	f.partition(boot, 1, "8:1", 1048576)
	f.attrs("sys/devices/"+dev, "vendor", "ATA     ", "model", "INTEL SSDSC2KB24")
	f.udev("8:0", ataUdev("INTEL SSDSC2KB240G8", "PHYF012345AB240AGN", "0x55cd2e415b1c2d3e", "pci-0000:00:17.0-ata-1")...)
	return f
}

// sasServer has two Seagate SAS disks behind an LSI HBA's expander, in
// bays 3 and 4 of the backplane's SES enclosure (0:0:1:0), partitioned
// into md0. Only sda's udev entry has sg3_utils' SCSI_IDENT_* properties.
func sasServer(t *testing.T) *fixture {
	f := newFixture(t)
	const exp = "pci0000:00/0000:00:03.0/0000:02:00.0/host0/port-0:0/expander-0:0"
	ses := exp + "/port-0:0:1/end_device-0:0:1/target0:0:1/0:0:1:0"
	f.attrs("sys/devices/"+ses, "vendor", "LSI     ", "model", "SAS3x28         ", "type", "13")
	encl := "sys/devices/" + ses + "/enclosure/0:0:1:0"
	f.attrs(encl, "components", "4", "id", "0x500304801f3a2bfd")
	f.link(encl+"/device", "sys/devices/"+ses)
	f.link("sys/class/enclosure/0:0:1:0", encl)
	for i := 1; i <= 4; i++ {
		f.attrs(encl+"/Slot 0"+strconv.Itoa(i), "slot", strconv.Itoa(i), "type", "array device",
			"status", "OK", "locate", "0", "fault", "0", "active", "0")
	}
	f.dir(encl + "/power")

	var members []string
	for i, d := range []struct{ name, target, majmin, slot, serial, wwn, phy string }{
		{"sda", "0:0:0", "8:0", "Slot 03", "ZC1AB2340000C8123ABC", "0x5000c500a1b2c3d4", "3"},
		{"sdb", "0:0:2", "8:16", "Slot 04", "ZC1CD5670000C8456DEF", "0x5000c500e5f6a7b8", "4"},
	} {
		dev := exp + "/port-" + d.target + "/end_device-" + d.target + "/target" + d.target + "/" + d.target + ":0"
		dir := f.block(dev+"/block/"+d.name, dev, d.majmin, 7814037168, false, true)
		f.attrs("sys/devices/"+dev, "vendor", "SEAGATE ", "model", "ST4000NM0025    ", "rev", "E002",
			"wwid", "naa."+strings.TrimPrefix(d.wwn, "0x"))
		f.link(encl+"/"+d.slot+"/device", "sys/devices/"+dev)
		f.link("sys/devices/"+dev+"/enclosure_device:"+d.slot, encl+"/"+d.slot)
		members = append(members, f.partition(dir, 1, d.majmin[:2]+strconv.Itoa(i*16+1), 7814035120))
		bypath := "pci-0000:02:00.0-sas-exp0x500304801f3a2bff-phy" + d.phy + "-lun-0"
		lines := []string{
			"S:disk/by-id/scsi-3" + strings.TrimPrefix(d.wwn, "0x"), "S:disk/by-id/wwn-" + d.wwn, "S:disk/by-path/" + bypath,
			"E:ID_SCSI=1", "E:ID_VENDOR=SEAGATE", `E:ID_VENDOR_ENC=SEAGATE\x20`, "E:ID_MODEL=ST4000NM0025",
			"E:ID_MODEL_ENC=" + enc("ST4000NM0025", 16), "E:ID_REVISION=E002", "E:ID_TYPE=disk",
			"E:ID_SERIAL=3" + strings.TrimPrefix(d.wwn, "0x"), "E:ID_SERIAL_SHORT=" + strings.TrimPrefix(d.wwn, "0x"),
			"E:ID_WWN=" + d.wwn, "E:ID_WWN_WITH_EXTENSION=" + d.wwn, "E:ID_SCSI_SERIAL=" + d.serial,
			"E:ID_BUS=scsi", "E:ID_PATH=" + bypath,
		}
		f.devLinks("by-id", d.name, "scsi-3"+strings.TrimPrefix(d.wwn, "0x"), "wwn-"+d.wwn)
		if i == 0 {
			lines = append(lines, "S:disk/by-id/scsi-SSEAGATE_ST4000NM0025_"+d.serial, "E:SCSI_IDENT_SERIAL="+d.serial)
			f.devLinks("by-id", d.name, "scsi-SSEAGATE_ST4000NM0025_"+d.serial)
		}
		f.udev(d.majmin, lines...)
		f.devLinks("by-path", d.name, bypath)
	}
	f.md("md0", "9:0", 7814033072, members...)
	return f
}
