package inventory

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDriftStates(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")

	in := Drift(p, p, fixedNow, time.Hour)
	if in.State != StateInStep || len(in.Drifted()) != 0 || in.InStep != 11 {
		t.Errorf("P with itself: %s", in.Text())
	}

	d := Drift(p, s, fixedNow.Add(10*time.Minute), time.Hour)
	if d.State != StateDrifted || d.S.Age != "10m0s" || d.S.State != "fresh" {
		t.Fatalf("P with S: %s", d.Text())
	}
	var got []string
	for _, it := range d.Drifted() {
		if it.Kind != "apt-source" {
			got = append(got, it.Kind+" "+it.Name+" "+it.P+" | "+it.S)
		}
	}
	want := []string{
		"only-on-p firmware-bnx2 20230210-5 all | ",
		"only-on-p haproxy 2.6.12-1+deb12u1 amd64 | ",
		"only-on-s htop  | 3.2.2-2 amd64",
		"only-on-p libc6:i386 2.36-9+deb12u4 i386 | ",
		"only-on-s linux-image-6.12.9-amd64  | 6.12.9-1~bpo12+1 amd64",
		"arch mawk amd64 | i386",
		"version openssh-server 1:9.2p1-2+deb12u2 | 1:9.2p1-2+deb12u3",
		"held postgresql-15 hold | install",
		"running-kernel  6.1.0-18-amd64 | 6.12.9-amd64",
		"boot-kernel  6.1.0-18-amd64 | 6.12.9-amd64",
		"installed-kernel 6.12.9-amd64 absent | present",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drifted items\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d.InStep != 5 { // base-files bash libc6:amd64 firmware-realtek linux-image-6.1
		t.Errorf("in step %d", d.InStep)
	}
	for _, it := range d.Items {
		if it.Kind == "installed-kernel" && it.Name == "6.1.0-18-amd64" && it.State != StateInStep {
			t.Errorf("6.1 installed on both: %+v", it)
		}
	}

	stale := Drift(p, s, fixedNow.Add(3*time.Hour), time.Hour)
	if stale.State != StateUnknown || stale.S.State != "stale" || stale.S.Age != "3h0m0s" {
		t.Errorf("stale: %+v", stale)
	}
	for _, it := range stale.Items {
		if it.State != StateUnknown {
			t.Errorf("item of a stale comparison is %s: %+v", it.State, it)
		}
	}
	if !strings.Contains(stale.Text(), "S: s, taken 2026-03-01T12:00:00Z (3h0m0s ago, stale)") {
		t.Errorf("text:\n%s", stale.Text())
	}

	missing := Drift(p, nil, fixedNow, time.Hour)
	if missing.State != StateUnknown || missing.S.State != "missing" || len(missing.Items) != 0 {
		t.Errorf("missing: %+v", missing)
	}
	if !strings.Contains(missing.Text(), "S: no inventory") {
		t.Errorf("text:\n%s", missing.Text())
	}
	b, err := json.Marshal(d)
	if err != nil || !strings.Contains(string(b), `"kind":"held","name":"postgresql-15","p":"hold","s":"install","state":"drifted"`) {
		t.Errorf("json: %v %s", err, b)
	}
}

// The selected modules' packages: a difference in one names its module; a
// package a module needs that neither node has is a gap, not drift.
func TestDriftModules(t *testing.T) {
	p, s := takePair(t, "testdata/nodes/p", "testdata/nodes/s")
	d := Drift(p, s, fixedNow, time.Hour)
	state := d.State
	d.Modules(p, s, map[string][]string{
		"web-haproxy":  {"haproxy"},
		"system-base":  {"openssh-server", "bash"},
		"file-samba":   {"samba"},
		"web-haproxy2": {"haproxy"},
	})
	mods := map[string]string{}
	for _, it := range d.Items {
		mods[it.Kind+" "+it.Name] = it.Module
	}
	for k, want := range map[string]string{
		"only-on-p haproxy":      "web-haproxy", // the first module by name
		"version openssh-server": "system-base",
		"only-on-s htop":         "",
	} {
		if mods[k] != want {
			t.Errorf("%s: module %q, want %q", k, mods[k], want)
		}
	}
	if len(d.ModuleGaps) != 1 || d.ModuleGaps[0] != "module file-samba needs package samba: installed on neither node" {
		t.Errorf("gaps %q", d.ModuleGaps)
	}
	if d.State != state {
		t.Errorf("module gaps changed the state from %s to %s", state, d.State)
	}
	text := d.Text()
	for _, want := range []string{"haproxy", "(module web-haproxy)", "warning: module file-samba needs package samba"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	// Without both inventories nothing is said.
	u := Drift(p, nil, fixedNow, time.Hour)
	u.Modules(p, nil, map[string][]string{"file-samba": {"samba"}})
	if len(u.ModuleGaps) != 0 {
		t.Errorf("gaps with one inventory: %q", u.ModuleGaps)
	}
}
