package bootcheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/hwid"

	"github.com/sentryha/sentry/synchronizer/inventory"
)

// bnx2Machine writes a sysfs tree of one machine with a Broadcom NIC whose
// module (bnx2, in the inventory fixture's kernel) needs firmware, and
// points p (the driver check's paths) at it and at the fixture's modules.
func bnx2Machine(t *testing.T, p *Paths) {
	t.Helper()
	sys := t.TempDir()
	dev := filepath.Join(sys, "bus/pci/devices/0000:02:00.0")
	os.MkdirAll(dev, 0o755)
	for name, v := range map[string]string{"vendor": "0x14e4", "device": "0x164a", "class": "0x020000",
		"subsystem_vendor": "0x103c", "subsystem_device": "0x3101", "modalias": "pci:v000014E4d0000164Asv0000103Csd00003101bc02sc00i00"} {
		os.WriteFile(filepath.Join(dev, name), []byte(v+"\n"), 0o444)
	}
	os.Symlink("../../../bus/pci/drivers/bnx2", filepath.Join(dev, "driver"))
	t.Setenv(SysEnv, "")
	p.SysDir, p.ModulesDir = sys, "../synchronizer/inventory/testdata/nodes/p/lib/modules"
}

// TestCheckDriversFirmware: firmware that is there passes; no firmware
// folder at all is a fact (the device fails: none of its firmware is on
// the disks); a firmware folder that cannot be listed is an error naming
// it, and the device's verdict is unknown, not failed (issue 13, defect 8:
// the listing's error was ignored and the check failed the NIC).
func TestCheckDriversFirmware(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	cases := []struct {
		name    string
		dir     string
		boots   string
		verdict string
		cause   string
		reason  string
		err     string
	}{
		{"present", "../synchronizer/inventory/testdata/nodes/p/lib/firmware", "yes", "ok", "", "module bnx2 is in 6.1.0-18-amd64", ""},
		{"no firmware folder", filepath.Join(t.TempDir(), "lib/firmware"), "no", "fail", inventory.CauseMissingFirmware,
			"module bnx2 needs firmware bnx2/bnx2-rv2p-09-6.0.17.fw, bnx2/bnx2-mips-09-6.2.1b.fw and none of it is in /lib/firmware", ""},
		{"firmware folder unreadable", filepath.Join(notDir, "firmware"), "unknown", "unknown", inventory.CauseFirmwareUnknown,
			"module bnx2 needs firmware bnx2/bnx2-rv2p-09-6.0.17.fw, bnx2/bnx2-mips-09-6.2.1b.fw, and the firmware in " + filepath.Join(notDir, "firmware") +
				" could not be listed: lstat " + filepath.Join(notDir, "firmware") + ": not a directory",
			"the firmware in " + filepath.Join(notDir, "firmware") + " could not be listed: lstat " + filepath.Join(notDir, "firmware") + ": not a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Paths{FirmwareDir: tc.dir}
			bnx2Machine(t, &p)
			rep, err := checkDrivers(p)
			if (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if rep == nil || len(rep.Devices) != 1 {
				t.Fatalf("report %+v", rep)
			}
			ev := rep.Devices[0]
			if rep.Boots != tc.boots || ev.Verdict != tc.verdict || ev.Cause != tc.cause || ev.Reason != tc.reason {
				t.Fatalf("boots %s, device %s %s:\n got: %s\nwant: %s", rep.Boots, ev.Verdict, ev.Cause, ev.Reason, tc.reason)
			}
			if tc.boots != "yes" && (len(rep.Because) != 1 || !strings.HasSuffix(rep.Because[0], ": "+tc.reason)) {
				t.Fatalf("because %q", rep.Because)
			}
		})
	}
}

// TestRunFirmwareUnreadable: the boot goes on, and its evidence says the
// driver check is incomplete (a warning and the stage's error) rather than
// that these disks lack the NIC's firmware.
func TestRunFirmwareUnreadable(t *testing.T) {
	f := newFixture(t)
	bnx2Machine(t, &f.paths)
	notDir := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	f.paths.FirmwareDir = filepath.Join(notDir, "firmware")
	f.writeDiskSet(t, stampOf("primary", hwA), "node-p", "node-s")
	WriteMachines(f.machines, machines())
	res, err := Run(context.Background(), Options{StateDir: f.state, MachinesFile: f.machines, Paths: f.paths, NoNetwork: true, Identify: func() (hwid.Identity, error) { return hwB, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != Primary || res.Drivers == nil || res.Drivers.Boots != "unknown" {
		t.Fatalf("result %s, drivers %+v", res.Outcome, res.Drivers)
	}
	if !hasWarning(res, "the driver check is incomplete: the firmware in "+f.paths.FirmwareDir+" could not be listed") || hasWarning(res, "lack drivers") {
		t.Errorf("warnings %q", res.Warnings)
	}
	if s := stageNamed(res, "check-drivers"); s == nil || !strings.Contains(s.Error, f.paths.FirmwareDir) {
		t.Errorf("check-drivers stage %+v", s)
	}
}
