package modset

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The set is read once: a change of the module files shows only after
// Reload, or after Touched names one of them; a change of role reads it
// again (a secondary loads the primary's manifests as a follower).
func TestModulesCachedUntilReloaded(t *testing.T) {
	s := newTestSet(t, false)
	first := s.Modules()
	if first == nil || first.Module("web-nginx") == nil || first.Module("web-nginx").Version != "9.0.0" {
		t.Fatalf("first load: %+v", first)
	}
	if s.Modules() != first {
		t.Fatal("the set was read again without a reload")
	}
	// A broken selection file (written by hand, or by `sentry modules
	// select` on a node that does not sync): its fingerprint changed, so
	// the next use reads it.
	if err := os.WriteFile(s.opts.SelectionFile, []byte("this is not toml ["), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Modules() != nil {
		t.Fatal("a broken selection file was not read")
	}
	if n := len(s.events); n != 1 || s.events[0].kind != "modules-invalid" {
		t.Fatalf("events: %+v", s.events)
	}
	if s.Touched([]string{"/etc/nginx/nginx.conf", filepath.Join(filepath.Dir(s.opts.SelectionFile), "other.toml")}) {
		t.Fatal("paths outside the module files reloaded the set")
	}
	if !s.Touched([]string{"/etc/nginx/nginx.conf", s.opts.SelectionFile}) {
		t.Fatal("the selection file did not reload the set")
	}
	s.Reload()
	s.Modules()
	if len(s.events) != 1 {
		t.Fatalf("the same error was reported twice: %+v", s.events)
	}
	// Fixed: read again at the next use.
	os.Remove(s.opts.SelectionFile)
	if !s.Touched([]string{filepath.Join(s.opts.InstallDir, "web-nginx", "9.0.0.toml")}) {
		t.Fatal("an installed manifest did not reload the set")
	}
	set := s.Modules()
	if set == nil {
		t.Fatal("not read again after the fix")
	}
	if s.Modules() != set {
		t.Fatal("read again with nothing changed")
	}
	// The role changes: read again as a follower.
	s.secondary = true
	if s.Modules() == set {
		t.Fatal("not read again after the role changed")
	}
	p, _ := s.PolicyUnits()
	if slices.Contains(p.Roots, "/etc/cron.d") {
		t.Fatalf("secondary roots %v", p.Roots)
	}
}

// While a sync that may write the module files runs, each use reads them;
// files that do not load then are the apply's middle (the selection
// written, the manifest it names not yet: seen in e2e TestModules), not an
// error: the last set read whole stands and nothing is reported, until the
// apply's end reads them again. Its end reads them again only when it
// touched one.
func TestModulesReadDuringApply(t *testing.T) {
	s := newTestSet(t, false)
	first := s.Modules()
	sel := s.opts.SelectionFile
	orig, err := os.ReadFile(sel)
	fi, serr := os.Stat(sel)
	if err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	end := s.Applying()
	if err := os.WriteFile(sel, []byte("[modules.web-nginx]\nversion = \"9.1.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Modules() != first {
		t.Fatal("a selection whose manifest is not written yet replaced the set during the apply")
	}
	// A whole state is read at once: no selection, the built-in modules.
	os.Remove(sel)
	if got := s.Modules(); got == first || got == nil || got.Module("web-nginx").Version == "9.0.0" {
		t.Fatalf("the module files were not read during the apply: %+v", got)
	}
	// Put back as it was (content and time): the files are as before.
	os.WriteFile(sel, orig, 0o644)
	os.Chtimes(sel, fi.ModTime(), fi.ModTime())
	end([]string{"/etc/nginx/nginx.conf"})
	if s.Modules() != first {
		t.Fatal("an apply that did not touch the module files reloaded the set")
	}
	if len(s.events) != 0 {
		t.Fatalf("events during and after a sound apply: %+v", s.events)
	}
	end = s.Applying()
	end(nil)
	if s.Modules() == first {
		t.Fatal("a failed apply did not reload the set")
	}
	// An apply that leaves the files broken: reported at its end, once.
	end = s.Applying()
	if err := os.WriteFile(sel, []byte("this is not toml ["), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Modules() == nil || len(s.events) != 0 {
		t.Fatalf("during the apply: the set dropped or reported (%+v)", s.events)
	}
	end([]string{sel})
	if s.Modules() != nil {
		t.Fatal("broken module files after the apply: the set still in use")
	}
	s.Modules()
	if len(s.events) != 1 || s.events[0].kind != "modules-invalid" {
		t.Fatalf("events after an apply that broke the files: %+v", s.events)
	}
}
