package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
)

// The lab's software for package parity and cross-boot compatibility,
// built once on the host under CacheDir/apt (docs/lab.md):
//
//   - repo/: a flat apt repository signed with a lab-only key (InRelease,
//     Packages, the .debs). Nodes see it read-only at AptRepoMount through
//     the source AptListFile; the key is AptKeyring in both disk sets.
//   - kernel/: a real Debian kernel's module tree (linux-image-amd64 of the
//     host's mirror), cut down to the drivers of the lab's machines and
//     indexed by the real depmod, without LabDriver: that one comes in the
//     repo's package LabDriverPackage, which runs depmod when installed.
//   - kmod.deb: Debian's kmod (depmod), installed into each disk set.
//
// Disk set S is installed with LabDriverPackage (its machine B has the
// driver's NIC); disk set P is not, so P does not boot on B until the
// parity plan adds the package.

// Paths inside a node.
const (
	AptRepoMount  = "/srv/sentry-lab-apt"
	AptListFile   = "/etc/apt/sources.list.d/sentry-lab.list"
	AptKeyring    = "/etc/apt/trusted.gpg.d/sentry-lab.gpg"
	HardwareMount = "/run/sentry-lab/hardware"
	// MachineMdstat and MachineClockOffset are files of each machine's
	// hardware folder (MachineFile) that its node's agent reads as
	// /proc/mdstat and as an offset added to the peer's clock.
	MachineMdstat      = "mdstat"
	MachineClockOffset = "clock-offset"
	// NoArrays is /proc/mdstat without md arrays.
	NoArrays       = "Personalities : \nunused devices: <none>\n"
	hardwareDropIn = "/etc/systemd/system/sentry-agent.service.d/50-lab-hardware.conf"
	// bootcheckHardwareDropIn points the bootcheck's driver check there too.
	bootcheckHardwareDropIn = "/etc/systemd/system/sentry-bootcheck.service.d/50-lab-hardware.conf"
)

// The lab's own packages.
const (
	HelloPackage     = "sentry-lab-hello"
	LabDriver        = "e1000e"
	LabDriverPackage = "sentry-lab-e1000e"
)

// aptVersion names the recipe of CacheDir/apt; raising it rebuilds it.
const aptVersion = "1"

// Commands used to build the repository.
var (
	AptGetCmd = "apt-get"
	AptCache  = "apt-cache"
	DpkgDeb   = "dpkg-deb"
	GPGCmd    = "gpg"
	DepmodCmd = "depmod"
)

// kernelDrivers are the module files taken from the kernel package: the
// NIC drivers of the lab's machines with their dependencies (ptp and
// pps_core are built into Debian's kernel).
var kernelDrivers = []string{
	"kernel/drivers/net/ethernet/intel/igb/igb.ko",
	"kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko",
	"kernel/drivers/dca/dca.ko",
	"kernel/drivers/i2c/algos/i2c-algo-bit.ko",
}

// pciDevice is one device of a lab machine's PCI list.
type pciDevice struct {
	Slot, Class, Vendor, Device, SubVendor, SubDevice, Driver string
	NIC                                                       bool // the machine's NIC sits on it
}

// MachinePCI is each lab machine's PCI list: a host bridge with no driver
// and the NIC. Machine B's Intel 82574L needs e1000e, which disk set P's
// kernel tree lacks.
var MachinePCI = map[string][]pciDevice{
	"a": {
		{Slot: "0000:00:00.0", Class: "060000", Vendor: "8086", Device: "29c0", SubVendor: "1af4", SubDevice: "1100"},
		{Slot: "0000:01:00.0", Class: "020000", Vendor: "8086", Device: "1521", SubVendor: "8086", SubDevice: "0001", Driver: "igb", NIC: true},
	},
	"b": {
		{Slot: "0000:00:00.0", Class: "060000", Vendor: "8086", Device: "29c0", SubVendor: "1af4", SubDevice: "1100"},
		{Slot: "0000:02:00.0", Class: "020000", Vendor: "8086", Device: "10d3", SubVendor: "8086", SubDevice: "a01f", Driver: "e1000e", NIC: true},
	},
	"c": {
		{Slot: "0000:00:00.0", Class: "060000", Vendor: "8086", Device: "29c0", SubVendor: "1af4", SubDevice: "1100"},
		{Slot: "0000:03:00.0", Class: "020000", Vendor: "8086", Device: "1521", SubVendor: "8086", SubDevice: "0001", Driver: "igb", NIC: true},
	},
}

func (d pciDevice) modalias() string {
	return fmt.Sprintf("pci:v0000%sd0000%ssv0000%ssd0000%sbc%ssc%si%s", strings.ToUpper(d.Vendor), strings.ToUpper(d.Device),
		strings.ToUpper(d.SubVendor), strings.ToUpper(d.SubDevice), strings.ToUpper(d.Class[0:2]), strings.ToUpper(d.Class[2:4]), strings.ToUpper(d.Class[4:6]))
}

// aptCache is CacheDir/apt: the lab's signed apt repository, the kernel
// module tree and kmod, built once and shared by every lab.
type aptCache struct {
	cacheDir string
	log      logFunc
	prog     *progress
}

func (a *aptCache) dir() string     { return filepath.Join(a.cacheDir, "apt") }
func (a *aptCache) repoDir() string { return filepath.Join(a.dir(), "repo") }

// ready tells whether CacheDir/apt holds this recipe's build.
func (a *aptCache) ready() bool {
	return readStamp(filepath.Join(a.dir(), "stamp")) == aptVersion
}

// ensure builds the lab's apt repository and kernel tree once. A lock
// file keeps two labs (each with its own name) from building it together.
func (a *aptCache) ensure(ctx context.Context) error {
	if a.ready() {
		return nil
	}
	if err := os.MkdirAll(a.cacheDir, 0o755); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(a.cacheDir, "apt.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	if a.ready() {
		return nil
	}
	start := time.Now()
	a.log("building the lab's signed apt repository and kernel tree (once; cached in %s)", a.dir())
	tmp := a.dir() + ".tmp"
	os.RemoveAll(tmp)
	task := a.prog.task("apt")
	err = buildApt(ctx, tmp, task.step)
	task.done()
	if err != nil {
		return fmt.Errorf("lab apt repository: %w", err)
	}
	os.RemoveAll(a.dir())
	if err := os.Rename(tmp, a.dir()); err != nil {
		return err
	}
	a.log("apt repository and kernel tree built in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// buildApt makes everything under dir, telling step what it is doing.
func buildApt(ctx context.Context, dir string, step func(name, detail string)) error {
	for _, d := range []string{"download", "repo", "kernel", "build"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// The kernel package the host's mirror has for linux-image-amd64.
	step("finding the kernel package", "")
	dep, err := output(ctx, AptCache, "depends", "linux-image-amd64")
	if err != nil {
		return err
	}
	var kpkg string
	for _, line := range strings.Split(dep, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Depends: "); ok && strings.HasPrefix(v, "linux-image-") {
			kpkg = v
			break
		}
	}
	if kpkg == "" {
		return fmt.Errorf("apt-cache depends linux-image-amd64 names no kernel package:\n%s", dep)
	}
	release := strings.TrimPrefix(kpkg, "linux-image-")
	step("downloading "+kpkg+" and kmod", "")
	cmd := exec.CommandContext(ctx, AptGetCmd, "download", kpkg, "kmod")
	cmd.Dir = filepath.Join(dir, "download")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s kmod (the host needs its mirror for this, once): %v: %s", kpkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "download", kpkg+"_*.deb"))
	kmods, _ := filepath.Glob(filepath.Join(dir, "download", "kmod_*.deb"))
	if len(debs) != 1 || len(kmods) != 1 {
		return fmt.Errorf("apt-get download left %d %s and %d kmod packages", len(debs), kpkg, len(kmods))
	}
	if err := os.Rename(kmods[0], filepath.Join(dir, "kmod.deb")); err != nil {
		return err
	}

	// The module tree: modules.builtin* and the drivers' files, indexed by
	// depmod as the kernel package's postinst would.
	step("extracting the NIC drivers", "")
	ktree := filepath.Join(dir, "kernel")
	mdir := "./lib/modules/" + release + "/"
	members := []string{mdir + "modules.builtin", mdir + "modules.builtin.modinfo", mdir + "modules.order"}
	for _, k := range kernelDrivers {
		members = append(members, mdir+k)
	}
	if err := extractDeb(ctx, debs[0], ktree, members); err != nil {
		return err
	}
	rel := func(p string) string { return filepath.Join(ktree, "lib/modules", release, p) }
	drv := "kernel/drivers/net/ethernet/intel/" + LabDriver + "/" + LabDriver + ".ko"
	// The driver goes into its own package; the tree is indexed without it.
	driverFile := filepath.Join(dir, "build", LabDriver+".ko")
	if err := os.Rename(rel(drv), driverFile); err != nil {
		return err
	}
	if err := run(ctx, DepmodCmd, "-b", ktree, release); err != nil {
		return err
	}
	os.Remove(filepath.Join(dir, "download", filepath.Base(debs[0]))) // 70 MB, no longer needed

	// The packages.
	step("building and signing the lab's packages", "")
	repo := filepath.Join(dir, "repo")
	hello := map[string]string{"usr/share/doc/" + HelloPackage + "/README": "sentry lab: a package for the package-parity test.\n"}
	if err := buildDeb(ctx, filepath.Join(dir, "build"), repo, debSpec{Name: HelloPackage, Version: "1.0", Arch: "all",
		Description: "Sentry lab package for the parity test", Files: hello}); err != nil {
		return err
	}
	ko, err := os.ReadFile(driverFile)
	if err != nil {
		return err
	}
	dmod := "depmod -a " + release + " || true\n"
	if err := buildDeb(ctx, filepath.Join(dir, "build"), repo, debSpec{Name: LabDriverPackage, Version: "1.0", Arch: "amd64",
		Description: "Intel 82574L driver (" + LabDriver + ") for kernel " + release + ", lab driver package",
		Depends:     "kmod", Files: map[string]string{"lib/modules/" + release + "/" + drv: string(ko)},
		Postinst: "#!/bin/sh\nset -e\n" + dmod, Postrm: "#!/bin/sh\nset -e\n" + dmod}); err != nil {
		return err
	}
	if err := writeIndex(repo); err != nil {
		return err
	}
	if err := signRepo(ctx, dir); err != nil {
		return err
	}
	os.RemoveAll(filepath.Join(dir, "build"))
	os.RemoveAll(filepath.Join(dir, "download"))
	return os.WriteFile(filepath.Join(dir, "stamp"), []byte(aptVersion+"\n"), 0o644)
}

// extractDeb unpacks the named members of a .deb's data into dir.
func extractDeb(ctx context.Context, deb, dir string, members []string) error {
	fs := exec.CommandContext(ctx, DpkgDeb, "--fsys-tarfile", deb)
	tar := exec.CommandContext(ctx, "tar", append([]string{"-x", "-C", dir}, members...)...)
	pipe, err := fs.StdoutPipe()
	if err != nil {
		return err
	}
	tar.Stdin = pipe
	var errb bytes.Buffer
	tar.Stderr, fs.Stderr = &errb, &errb
	if err := fs.Start(); err != nil {
		return err
	}
	if err := tar.Run(); err != nil {
		fs.Wait()
		return fmt.Errorf("unpack %s: %v: %s", deb, err, errb.String())
	}
	return fs.Wait()
}

type debSpec struct {
	Name, Version, Arch, Description, Depends string
	Files                                     map[string]string // path (relative to /) -> content
	Postinst, Postrm                          string
}

// buildDeb makes NAME_VERSION_ARCH.deb in out with dpkg-deb.
func buildDeb(ctx context.Context, work, out string, s debSpec) error {
	root := filepath.Join(work, s.Name)
	os.RemoveAll(root)
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		return err
	}
	for p, c := range s.Files {
		fp := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(fp), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(fp, []byte(c), 0o644); err != nil {
			return err
		}
	}
	ctl := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Sentry lab <lab@sentry.invalid>\nSection: misc\nPriority: optional\n",
		s.Name, s.Version, s.Arch)
	if s.Depends != "" {
		ctl += "Depends: " + s.Depends + "\n"
	}
	ctl += "Description: " + s.Description + "\n"
	if err := os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte(ctl), 0o644); err != nil {
		return err
	}
	for name, body := range map[string]string{"postinst": s.Postinst, "postrm": s.Postrm} {
		if body != "" {
			if err := os.WriteFile(filepath.Join(root, "DEBIAN", name), []byte(body), 0o755); err != nil {
				return err
			}
		}
	}
	deb := filepath.Join(out, fmt.Sprintf("%s_%s_%s.deb", s.Name, s.Version, s.Arch))
	return run(ctx, DpkgDeb, "--root-owner-group", "--build", root, deb)
}

// writeIndex writes Packages (a stanza per .deb, as apt-ftparchive would)
// and Release with its checksums.
func writeIndex(repo string) error {
	debs, _ := filepath.Glob(filepath.Join(repo, "*.deb"))
	sort.Strings(debs)
	var pk bytes.Buffer
	for _, d := range debs {
		ctl, err := exec.Command(DpkgDeb, "--field", d).Output()
		if err != nil {
			return fmt.Errorf("dpkg-deb --field %s: %w", d, err)
		}
		b, err := os.ReadFile(d)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		pk.WriteString(strings.TrimRight(string(ctl), "\n") + "\n")
		fmt.Fprintf(&pk, "Filename: ./%s\nSize: %d\nSHA256: %s\n\n", filepath.Base(d), len(b), hex.EncodeToString(sum[:]))
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), pk.Bytes(), 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(pk.Bytes())
	rel := fmt.Sprintf("Origin: sentry-lab\nLabel: sentry-lab\nSuite: ./\nDate: %s\nArchitectures: amd64 all\nSHA256:\n %s %d Packages\n",
		time.Now().UTC().Format(time.RFC1123), hex.EncodeToString(sum[:]), pk.Len())
	return os.WriteFile(filepath.Join(repo, "Release"), []byte(rel), 0o644)
}

// signRepo makes a lab-only key (no passphrase, in its own GNUPGHOME),
// signs Release into InRelease and exports the public key.
func signRepo(ctx context.Context, dir string) error {
	home := filepath.Join(dir, "gnupg")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return err
	}
	gpg := func(args ...string) error {
		return run(ctx, GPGCmd, append([]string{"--homedir", home, "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	}
	if err := gpg("--quick-gen-key", "Sentry lab apt repository <lab@sentry.invalid>", "ed25519", "sign", "never"); err != nil {
		return err
	}
	repo := filepath.Join(dir, "repo")
	if err := gpg("--local-user", "lab@sentry.invalid", "--clearsign", "--output", filepath.Join(repo, "InRelease"), filepath.Join(repo, "Release")); err != nil {
		return err
	}
	err := gpg("--output", filepath.Join(dir, "sentry-lab.gpg"), "--export", "lab@sentry.invalid")
	// The agent of gpg started for the key is not needed any more.
	exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
	return err
}

// installLabSoftware gives a new disk set what its installer would: the
// kernel module tree, kmod, the lab's apt source and key; disk set S also
// the driver package of its machine's NIC.
func (d *diskSets) installLabSoftware(ctx context.Context, id string) error {
	if err := d.apt.ensure(ctx); err != nil {
		return err
	}
	root := d.root(id)
	if err := run(ctx, "cp", "-a", filepath.Join(d.apt.dir(), "kernel", "lib", "modules"), filepath.Join(root, "lib")); err != nil {
		return err
	}
	files := map[string]string{
		AptListFile: "# sentry lab: the lab's local signed repository (no network in the lab).\ndeb file:" + AptRepoMount + " ./\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			return err
		}
	}
	key, err := os.ReadFile(filepath.Join(d.apt.dir(), "sentry-lab.gpg"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, AptKeyring), key, 0o644); err != nil {
		return err
	}
	debs := []string{filepath.Join(d.apt.dir(), "kmod.deb")}
	if id == "S" {
		drv, _ := filepath.Glob(filepath.Join(d.apt.repoDir(), LabDriverPackage+"_*.deb"))
		debs = append(debs, drv...)
	}
	for _, deb := range debs {
		tmp := filepath.Join(root, "tmp", filepath.Base(deb))
		if err := copyFile(deb, tmp); err != nil {
			return err
		}
		err := run(ctx, ChrootCmd, root, "dpkg", "-i", "/tmp/"+filepath.Base(deb))
		os.Remove(tmp)
		if err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// nodeBinds writes machine hw's PCI list (a sysfs-shaped tree) and the
// agent's drop-in that points its inventory there, and returns the
// nspawn options that show the node the apt repository and that list.
func (d *diskSets) nodeBinds(id, hw string) ([]string, error) {
	if !d.apt.ready() {
		return nil, nil // a disk set installed before the lab had a repository
	}
	sys := filepath.Join(d.hardwareDir(), hw, "sys")
	if err := writePCIList(sys, hw); err != nil {
		return nil, err
	}
	dropIn := filepath.Join(d.root(id), hardwareDropIn)
	if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
		return nil, err
	}
	conf := "# sentry lab only: the lab's machines share the host's /sys; each has its\n# own PCI list, which the inventory reads instead.\n[Service]\nEnvironment=SENTRY_INVENTORY_SYS=" + HardwareMount + "/sys\n"
	// The agent's readiness facts: the machine's own /proc/mdstat (none of
	// the host's arrays) and a clock offset to simulate (the nodes share
	// the host's clock). Tests write them on the host to inject faults.
	for name, content := range map[string]string{MachineMdstat: NoArrays, MachineClockOffset: ""} {
		if err := atomicfile.Write(filepath.Join(filepath.Dir(sys), name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	agentConf := conf + "Environment=SENTRY_MDSTAT=" + HardwareMount + "/" + MachineMdstat + "\n" +
		"Environment=SENTRY_LAB_CLOCK_OFFSET=" + HardwareMount + "/" + MachineClockOffset + "\n"
	if err := atomicfile.Write(dropIn, []byte(agentConf), 0o644); err != nil {
		return nil, err
	}
	// The bootcheck checks this machine's drivers on the disks: same list.
	bcDropIn := filepath.Join(d.root(id), bootcheckHardwareDropIn)
	if err := os.MkdirAll(filepath.Dir(bcDropIn), 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(bcDropIn, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return []string{"--bind-ro=" + d.apt.repoDir() + ":" + AptRepoMount, "--bind-ro=" + filepath.Dir(sys) + ":" + HardwareMount}, nil
}

// writePCIList writes machine hw's devices as /sys does: bus/pci/devices
// with the attributes and driver link, class/net with the NIC's MAC.
func writePCIList(sys, hw string) error {
	m, ok := machine(hw)
	devs, ok2 := MachinePCI[hw]
	if !ok || !ok2 {
		return fmt.Errorf("no PCI list for machine %q", hw)
	}
	if err := os.RemoveAll(sys); err != nil {
		return err
	}
	for _, d := range devs {
		dev := filepath.Join(sys, "devices/pci0000:00", d.Slot)
		attrs := map[string]string{"class": "0x" + d.Class, "vendor": "0x" + d.Vendor, "device": "0x" + d.Device,
			"subsystem_vendor": "0x" + d.SubVendor, "subsystem_device": "0x" + d.SubDevice, "modalias": d.modalias()}
		if err := os.MkdirAll(dev, 0o755); err != nil {
			return err
		}
		for k, v := range attrs {
			if err := os.WriteFile(filepath.Join(dev, k), []byte(v+"\n"), 0o444); err != nil {
				return err
			}
		}
		if d.Driver != "" {
			drv := filepath.Join(sys, "bus/pci/drivers", d.Driver)
			if err := os.MkdirAll(drv, 0o755); err != nil {
				return err
			}
			if err := os.Symlink("../../../bus/pci/drivers/"+d.Driver, filepath.Join(dev, "driver")); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Join(sys, "bus/pci/devices"), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("../../../devices/pci0000:00/"+d.Slot, filepath.Join(sys, "bus/pci/devices", d.Slot)); err != nil {
			return err
		}
		if d.NIC {
			net := filepath.Join(sys, "class/net", m.NIC)
			if err := os.MkdirAll(net, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(net, "address"), []byte(m.MAC+"\n"), 0o444); err != nil {
				return err
			}
			if err := os.Symlink("../../../devices/pci0000:00/"+d.Slot, filepath.Join(net, "device")); err != nil {
				return err
			}
		}
	}
	return nil
}
