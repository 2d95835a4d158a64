package inventory

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	pOnB, sOnA := Compat(p, &s.Hardware), Compat(s, &p.Hardware)
	plan := Plan(p, s, &pOnB, &sOnA)

	var install []string
	for _, i := range plan.InstallOnS {
		install = append(install, i.String())
	}
	want := []string{"firmware-bnx2:all=20230210-5", "haproxy:amd64=2.6.12-1+deb12u1", "libc6:i386=2.36-9+deb12u4",
		"mawk:amd64=1.3.4.20200120-3.1", "openssh-server:amd64=1:9.2p1-2+deb12u2"}
	if !reflect.DeepEqual(install, want) {
		t.Errorf("install on S %v, want %v", install, want)
	}
	// What apt is asked for: an Architecture: all package by its name
	// alone (apt-get install pkg=version), the others with their
	// architecture.
	var apt []string
	for _, i := range plan.InstallOnS {
		apt = append(apt, i.AptArg())
	}
	wantApt := []string{"firmware-bnx2=20230210-5", "haproxy:amd64=2.6.12-1+deb12u1", "libc6:i386=2.36-9+deb12u4",
		"mawk:amd64=1.3.4.20200120-3.1", "openssh-server:amd64=1:9.2p1-2+deb12u2"}
	if !reflect.DeepEqual(apt, wantApt) {
		t.Errorf("apt arguments %v, want %v", apt, wantApt)
	}
	if ssh := plan.InstallOnS[4]; !ssh.Downgrade || ssh.Current != "1:9.2p1-2+deb12u3" {
		t.Errorf("openssh-server %+v", ssh)
	}
	if !reflect.DeepEqual(plan.HoldOnS, []string{"postgresql-15"}) || len(plan.UnholdOnS) != 0 {
		t.Errorf("hold %v unhold %v", plan.HoldOnS, plan.UnholdOnS)
	}
	var only []string
	for _, i := range plan.OnlyOnS {
		only = append(only, i.Name)
	}
	if !reflect.DeepEqual(only, []string{"htop", "linux-image-6.12.9-amd64", "mawk"}) {
		t.Errorf("only on S %v", only)
	}
	var fixes []string
	for _, f := range plan.DiskSetFixes {
		fixes = append(fixes, f.DiskSet+" "+f.Action+" "+f.Package+" "+f.Module+" "+f.Device)
	}
	wantFixes := []string{
		"P add-to-initramfs  nvme 0000:01:00.0 144d:a808",
		"P install-package linux-image-6.12.9-amd64 r8169 0000:03:00.0 10ec:8126",
		"S add-to-initramfs  megaraid_sas 0000:18:00.0 1000:005d",
	}
	if !reflect.DeepEqual(fixes, wantFixes) {
		t.Errorf("fixes\n%s\nwant\n%s", strings.Join(fixes, "\n"), strings.Join(wantFixes, "\n"))
	}
	if !strings.Contains(plan.Text(), "disk set P: add the package linux-image-6.12.9-amd64 providing module r8169") {
		t.Errorf("text:\n%s", plan.Text())
	}
	if _, err := json.Marshal(plan); err != nil {
		t.Error(err)
	}

	// In step with itself: nothing to do.
	self := Compat(p, &p.Hardware)
	if empty := Plan(p, p, &self, &self); len(empty.InstallOnS)+len(empty.OnlyOnS)+len(empty.HoldOnS)+len(empty.DiskSetFixes) != 0 {
		t.Errorf("plan of P with itself: %+v", empty)
	}
}

func TestPlanFirmwareFix(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	// S boots on P's machine, which now has a Broadcom NetXtreme II; S
	// has bnx2 but not its firmware, which P has from firmware-bnx2.
	m := p.Hardware
	m.PCI = append(append([]PCIDevice(nil), m.PCI...), PCIDevice{Slot: "0000:1a:00.0", Class: "020000", Vendor: "14e4", Device: "164a",
		Modalias: "pci:v000014E4d0000164Asv0000103Csd00003101bc02sc00i00", Driver: "bnx2"})
	src := nodeSources("testdata/nodes/s", "s")
	src.Modaliases = m.Modaliases()
	s, err := Take(src)
	if err != nil {
		t.Fatal(err)
	}
	r := Compat(s, &m)
	if verdicts(r)["0000:1a:00.0"] != "fail missing-firmware" {
		t.Fatalf("%s", r.Text())
	}
	plan := Plan(p, s, nil, &r)
	var got []string
	for _, f := range plan.DiskSetFixes {
		got = append(got, f.DiskSet+" "+f.Action+" "+f.Package+" "+f.Firmware)
	}
	want := []string{
		"S add-to-initramfs  ",                      // megaraid_sas, as in TestPlan
		"S none-known  bnx2/bnx2-rv2p-09-6.0.17.fw", // on neither node
		"S install-firmware firmware-bnx2 bnx2/bnx2-mips-09-6.2.1b.fw",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fixes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
