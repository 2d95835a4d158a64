package mdstat

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFixtures(t *testing.T) {
	cases := []struct {
		file string
		want []Array
	}{
		{"healthy.mdstat", []Array{
			{Name: "md0", State: "active", Level: "raid1", Devices: []string{"sdb1", "sda1"}, Members: 2, Up: 2},
			{Name: "md1", State: "active", Level: "raid1", Devices: []string{"sdb2", "sda2"}, Members: 2, Up: 2},
		}},
		{"degraded.mdstat", []Array{
			{Name: "md1", State: "active", Level: "raid1", Devices: []string{"sdb2", "sda2"}, Failed: []string{"sdb2"}, Members: 2, Up: 1},
			{Name: "md0", State: "active", Level: "raid1", Devices: []string{"sda1"}, Members: 2, Up: 1},
		}},
		{"recovery.mdstat", []Array{
			{Name: "md0", State: "active", Level: "raid1", Devices: []string{"sdc1", "sda1"}, Members: 2, Up: 1, Action: "recovery", Progress: "22.5%"},
		}},
		{"check.mdstat", []Array{
			{Name: "md0", State: "active", Level: "raid1", Devices: []string{"sdb1", "sda1"}, Members: 2, Up: 2, Action: "check", Progress: "8.1%"},
			{Name: "md5", State: "active", Level: "raid5", Devices: []string{"sdf1", "sde1", "sdd1"}, Members: 3, Up: 3, Action: "resync", Progress: "DELAYED"},
		}},
		{"none.mdstat", nil},
		{"inactive.mdstat", []Array{
			{Name: "md127", State: "inactive", Devices: []string{"sdb1"}, Spares: []string{"sdb1"}, Members: 1},
		}},
	}
	for _, c := range cases {
		got, err := ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, got, c.want)
		}
	}
}

func TestJudgement(t *testing.T) {
	read := func(f string) []Array {
		a, err := ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := read("healthy.mdstat")[0]; a.Degraded() || a.Rebuilding() {
		t.Error("healthy array judged degraded or rebuilding")
	}
	if a := read("degraded.mdstat")[0]; !a.Degraded() {
		t.Error("an array with a failed member is not degraded")
	}
	if a := read("recovery.mdstat")[0]; !a.Rebuilding() || !a.Degraded() {
		t.Error("a recovering array is not rebuilding and degraded")
	}
	if a := read("check.mdstat")[0]; a.Rebuilding() || a.Degraded() {
		t.Error("a scheduled check judged a fault")
	}
	if a := read("inactive.mdstat")[0]; !a.Degraded() {
		t.Error("an inactive array is not degraded")
	}
}

func TestMissingFileIsNoArrays(t *testing.T) {
	a, err := ReadFile(filepath.Join(t.TempDir(), "mdstat"))
	if err != nil || a != nil {
		t.Fatalf("%v %v", a, err)
	}
}

func TestUnknownFormatIsAnError(t *testing.T) {
	_, err := Parse(strings.NewReader("Personalities : [raid1]\nmd0 : weird raid1 sda1[0]\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("err %v", err)
	}
	_, err = Parse(strings.NewReader("md0 : active raid1 sda1[0] sdb1[1]\n      1046528 blocks super 1.2\n"))
	if err == nil || !strings.Contains(err.Error(), "md0: no [members/up] count") {
		t.Fatalf("err %v", err)
	}
}
