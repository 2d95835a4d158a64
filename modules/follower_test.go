package modules

import (
	"os"
	"strings"
	"testing"
)

// A secondary (Options.Follower) reads a manifest with a probe of a kind
// its binary lacks, as a newer primary may sync to it: that probe is left
// out with a warning at its place, the module's other probes run. The
// primary, and `modules install`, refuse the same file (TestBadFiles).
func TestFollowerDropsUnknownProbeKinds(t *testing.T) {
	opts := testdataOptions(t, "bad-probe-kind.toml")
	opts.Follower = true
	set, warns, err := Load(opts)
	if err != nil {
		t.Fatalf("Load as follower: %v", err)
	}
	var found bool
	for _, m := range set.Modules() {
		if m.Name != "office-app" {
			continue
		}
		found = true
		if len(m.Probes) != 1 || m.Probes[0].Name != "app" {
			t.Errorf("office-app probes = %+v, want only \"app\"", m.Probes)
		}
	}
	if !found {
		t.Fatal("office-app is not in the set")
	}
	want := `bad-probe-kind.toml:13:1: key "probes[2].kind": probe "ping": kind "icmp" is not known to this binary`
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	if !strings.Contains(strings.Join(got, "\n"), want) {
		t.Errorf("warnings %q lack %q", got, want)
	}
	for _, sp := range set.Probes(ProbeEnv{}) {
		if sp.Name == "ping" {
			t.Errorf("the icmp probe is in the probe set: %+v", sp)
		}
	}

	// Schema 1 too.
	opts = testdataOptions(t, "bad-schema1-probe-kind.toml")
	opts.Follower = true
	if _, warns, err := Load(opts); err != nil || len(warns) == 0 {
		t.Errorf("schema 1 as follower: warnings %v, err %v", warns, err)
	}
}

// A probe whose parameters the follower's binary does not take (a key a
// newer binary added, say) is left out the same way, with a warning at
// its key; the primary refuses it (TestBadFiles).
func TestFollowerDropsProbesWithUnknownParams(t *testing.T) {
	opts := testdataOptions(t, "bad-param-unknown.toml")
	opts.Follower = true
	set, warns, err := Load(opts)
	if err != nil {
		t.Fatalf("Load as follower: %v", err)
	}
	if m := set.Module("office-app"); m == nil || len(m.Probes) != 0 {
		t.Fatalf("office-app: %+v, want it without its probe", m)
	}
	want := `bad-param-unknown.toml:9:1: key "probes[1].params.markr": probe "app": unknown parameter of the http probe (did you mean "marker"?): it takes host, insecure, marker, status, url: not run on this node`
	var got []string
	for _, w := range warns {
		got = append(got, w.String())
	}
	if !strings.Contains(strings.Join(got, "\n"), want) {
		t.Errorf("warnings %q lack %q", got, want)
	}
}

// A follower still refuses what is wrong on any binary.
func TestFollowerStillRefusesBadManifests(t *testing.T) {
	opts := testdataOptions(t, "bad-executable-untracked.toml")
	opts.Follower = true
	if _, _, err := Load(opts); err == nil {
		t.Fatal("an executable outside the tracked paths was accepted on a follower")
	}
}

func writeSelection(t *testing.T, opts Options, text string) {
	t.Helper()
	if err := os.WriteFile(opts.SelectionFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The selection file: without schema_version (as written before it was
// versioned) it is schema 1; schema 1 refuses unknown keys with their
// place; a newer schema is read with warnings; what is written says its
// schema.
func TestSelectionSchemas(t *testing.T) {
	opts := testdataOptions(t)
	writeSelection(t, opts, "[modules.web-nginx]\npinned = true\n")
	s, err := ReadSelection(opts.SelectionFile)
	if err != nil {
		t.Fatal(err)
	}
	if s.SchemaVersion != 1 || !s.Modules["web-nginx"].Pinned {
		t.Fatalf("unversioned file: %+v", s)
	}

	writeSelection(t, opts, "schema_version = 1\n[modules.web-nginx]\npinned = true\nweight = 3\n")
	_, err = ReadSelection(opts.SelectionFile)
	if err == nil || !strings.Contains(err.Error(), `modules.toml:4:1: key "modules.web-nginx.weight": unknown key`) {
		t.Fatalf("unknown key in schema 1: %v", err)
	}

	writeSelection(t, opts, "schema_version = 2\n[modules.web-nginx]\npinned = true\nweight = 3\n[policy]\nauto = true\n")
	s, err = ReadSelection(opts.SelectionFile)
	if err != nil {
		t.Fatalf("schema 2: %v", err)
	}
	if !s.Modules["web-nginx"].Pinned || len(s.Warnings) != 2 {
		t.Fatalf("schema 2: %+v, warnings %v", s.Modules["web-nginx"], s.Warnings)
	}
	if w := s.Warnings[0].String(); !strings.Contains(w, "unknown key of selection schema 2") {
		t.Errorf("warning %q", w)
	}
	_, warns, err := Load(opts)
	if err != nil {
		t.Fatalf("Load with a schema 2 selection: %v", err)
	}
	if len(warns) < 2 {
		t.Errorf("Load did not pass the selection's warnings on: %v", warns)
	}

	writeSelection(t, opts, "schema_version = -1\n")
	if _, err := ReadSelection(opts.SelectionFile); err == nil || !strings.Contains(err.Error(), `key "schema_version"`) {
		t.Errorf("negative schema: %v", err)
	}

	// Written: the schema first, then the modules.
	s = &Selection{Modules: map[string]*Choice{"web-nginx": {Version: "1.0.0", Pinned: true}}}
	if enc := string(s.Encode()); !strings.Contains(enc, "schema_version = 1\n") {
		t.Errorf("encoded selection lacks its schema:\n%s", enc)
	}
	if err := s.write(opts.SelectionFile); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSelection(opts.SelectionFile)
	if err != nil || back.Modules["web-nginx"].Version != "1.0.0" || back.SchemaVersion != 1 {
		t.Fatalf("read back: %+v, %v", back, err)
	}
}
