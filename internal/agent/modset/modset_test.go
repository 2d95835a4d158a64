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
// its end reads them again only when it touched one.
func TestModulesReadDuringApply(t *testing.T) {
	s := newTestSet(t, false)
	first := s.Modules()
	orig, err := os.ReadFile(s.opts.SelectionFile)
	fi, serr := os.Stat(s.opts.SelectionFile)
	if err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	end := s.Applying()
	if err := os.WriteFile(s.opts.SelectionFile, []byte("this is not toml ["), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Modules() != nil {
		t.Fatal("the module files were not read during the apply")
	}
	// Put back as it was (content and time): the files are as before.
	os.WriteFile(s.opts.SelectionFile, orig, 0o644)
	os.Chtimes(s.opts.SelectionFile, fi.ModTime(), fi.ModTime())
	end([]string{"/etc/nginx/nginx.conf"})
	if s.Modules() != first {
		t.Fatal("an apply that did not touch the module files reloaded the set")
	}
	end = s.Applying()
	end(nil)
	if s.Modules() == first {
		t.Fatal("a failed apply did not reload the set")
	}
}
