package inventory

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const machineB = "dmi:uuid=4c4c4544-0042-3510-8052-b4c04f4e4d32"

func TestProfileName(t *testing.T) {
	if got := ProfileName(machineB); got != "dmi-uuid-4c4c4544-0042-3510-8052-b4c04f4e4d32.toml" {
		t.Errorf("ProfileName(%q) = %q", machineB, got)
	}
	// A MAC list is long: cut, with a hash that tells two lists apart.
	long1 := "mac:" + strings.Repeat("52:54:00:12:34:56,", 8) + "52:54:00:12:34:57"
	long2 := "mac:" + strings.Repeat("52:54:00:12:34:56,", 8) + "52:54:00:12:34:58"
	n1, n2 := ProfileName(long1), ProfileName(long2)
	if n1 == n2 || len(n1) > 100 || strings.ContainsAny(n1, ":,=/") {
		t.Errorf("long ids: %q and %q", n1, n2)
	}
	if n := ProfileName("../../etc/passwd"); strings.Contains(n, "/") || strings.HasPrefix(n, ".") {
		t.Errorf("a path as an id gives %q", n)
	}
}

func TestNewProfileKeepsPhysicalNICs(t *testing.T) {
	s := take(t, "testdata/nodes/s", "s")
	var names []string
	for _, n := range NewProfile(s, machineB).Hardware.NICs {
		names = append(names, n.Name)
	}
	if len(s.Hardware.NICs) != 2 || strings.Join(names, " ") != "enp3s0" {
		t.Fatalf("inventory NICs %+v, profile NICs %v: want enp3s0 only (lo is not hardware)", s.Hardware.NICs, names)
	}
}

func TestWriteProfileIdempotentAndReadBack(t *testing.T) {
	s := take(t, "testdata/nodes/s", "s")
	dir := filepath.Join(t.TempDir(), "hardware")
	prof := NewProfile(s, machineB)
	path, changed, err := WriteProfile(dir, prof)
	if err != nil || !changed {
		t.Fatalf("first write: changed %v, %v", changed, err)
	}
	if filepath.Base(path) != ProfileName(machineB) {
		t.Errorf("written to %s", path)
	}
	got, err := ReadProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, prof) {
		t.Fatalf("read back differs:\n got %+v\nwant %+v", *got, prof)
	}
	if len(got.Hardware.PCI) == 0 || got.Hardware.PCI[0].Modalias == "" {
		t.Fatalf("no PCI devices in the profile: %+v", got.Hardware)
	}
	fi1, _ := os.Stat(path)
	first, _ := os.ReadFile(path)

	// A later inventory of the same hardware: nothing is written, the
	// profile keeps the time it was first taken.
	later := *s
	later.Taken = s.Taken.Add(10 * time.Minute)
	if _, changed, err := WriteProfile(dir, NewProfile(&later, machineB)); err != nil || changed {
		t.Fatalf("rewrite of unchanged hardware: changed %v, %v", changed, err)
	}
	fi2, _ := os.Stat(path)
	again, _ := os.ReadFile(path)
	if string(again) != string(first) || !fi2.ModTime().Equal(fi1.ModTime()) || !os.SameFile(fi1, fi2) {
		t.Fatal("the file was rewritten though the hardware did not change")
	}

	// A driver bound (or unbound) is a change.
	changedHW := later
	changedHW.Hardware.PCI = append([]PCIDevice(nil), s.Hardware.PCI...)
	changedHW.Hardware.PCI[0].Driver = "vfio-pci"
	want := NewProfile(&changedHW, machineB)
	if _, changed, err := WriteProfile(dir, want); err != nil || !changed {
		t.Fatalf("write of changed hardware: changed %v, %v", changed, err)
	}
	if got, err := ReadProfile(path); err != nil || !reflect.DeepEqual(*got, want) || !got.Taken.Equal(later.Taken) {
		t.Fatalf("after the change: %+v, %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files in the profile folder: %v (a temp file left?)", ents)
	}
	if _, _, err := WriteProfile(dir, NewProfile(s, "")); err == nil {
		t.Error("a profile without machine id was written")
	}
}

// Compat on a machine's stored profile says what it says on the machine's
// live inventory: the same verdict, reasons and evidence per device, in
// both directions, a failing one included.
func TestCompatOnStoredProfile(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	dir := t.TempDir()
	for _, x := range []struct {
		disks, machine *Inventory
		id             string
	}{{p, s, machineB}, {s, p, "dmi:uuid=machine-a"}} {
		path, _, err := WriteProfile(dir, NewProfile(x.machine, x.id))
		if err != nil {
			t.Fatal(err)
		}
		stored, err := ReadProfile(path)
		if err != nil {
			t.Fatal(err)
		}
		live, fromFile := Compat(x.disks, &x.machine.Hardware), Compat(x.disks, &stored.Hardware)
		if !reflect.DeepEqual(live, fromFile) {
			t.Errorf("disk set %s on %s's machine: live\n%s\nstored profile\n%s", x.disks.Node, x.machine.Node, live.Text(), fromFile.Text())
		}
	}
	if r := Compat(p, &s.Hardware); r.Boots != "no" {
		t.Fatalf("the fixture's P on B boots %q: the comparison above wants a failing case", r.Boots)
	}
}

func TestReadProfileCorrupt(t *testing.T) {
	s := take(t, "testdata/nodes/s", "s")
	dir := t.TempDir()
	path, _, err := WriteProfile(dir, NewProfile(s, machineB))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	lines := strings.Split(string(good), "\n")
	lineOf := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return i + 1
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, good)
		return 0
	}
	replace := func(prefix, with string) string {
		n := lineOf(prefix)
		l := append([]string(nil), lines...)
		l[n-1] = with
		return strings.Join(l, "\n")
	}
	modalias, count := lineOf("modalias ="), lineOf("count =")
	cut := strings.Join(lines[:modalias], "\n") + "\n"
	for _, c := range []struct {
		name, content, want string
	}{
		{"syntax", replace("modalias =", `modalias = "pci:v0000`), ":" + strconv.Itoa(modalias) + ":"},
		{"type", replace("count =", `count = "two"`), ":" + strconv.Itoa(count) + ":"},
		{"unknown key", replace("count =", `cores = 2`), ":" + strconv.Itoa(count) + ": unknown key"},
		{"cut short", cut, ":" + strconv.Itoa(modalias) + ": the file ends without"},
		{"no modalias", replace("modalias =", `modalias = ""`), "vendor, device or modalias missing"},
		{"other machine's id", replace("machine_id =", `machine_id = "dmi:uuid=someone-else"`), ":" + strconv.Itoa(lineOf("machine_id =")) + ": machine_id"},
		{"newer schema", replace("schema_version =", `schema_version = 9`), "newer than this binary's"},
	} {
		if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadProfile(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want the file and %q", c.name, err, c.want)
		}
	}
	// ReadProfiles keeps the good ones and names the bad one.
	other, _, err := WriteProfile(dir, NewProfile(s, "dmi:uuid=machine-a"))
	if err != nil {
		t.Fatal(err)
	}
	got, errs := ReadProfiles(dir)
	if len(got) != 1 || got[0].MachineID != "dmi:uuid=machine-a" || len(errs) != 1 || !strings.Contains(errs[0].Error(), path) {
		t.Fatalf("ReadProfiles: %d profiles, errors %v (good one %s)", len(got), errs, other)
	}
	// A corrupt file is replaced by the next write.
	if _, changed, err := WriteProfile(dir, NewProfile(s, machineB)); err != nil || !changed {
		t.Fatalf("write over a corrupt profile: changed %v, %v", changed, err)
	}
	if _, err := ReadProfile(path); err != nil {
		t.Fatal(err)
	}
	if got, errs := ReadProfiles(filepath.Join(dir, "none")); got != nil || errs != nil {
		t.Errorf("a missing folder: %v %v", got, errs)
	}
}
