package modules

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// nginxV writes a web-nginx manifest of version v (note varies the content).
func nginxV(t *testing.T, dir, v, note string) string {
	t.Helper()
	b, err := builtinFS.ReadFile("builtin/web-nginx.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `version = "1.0.0"`, `version = "`+v+`"`, 1) + "# " + note + "\n"
	p := filepath.Join(dir, "web-nginx-"+v+".toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func selectedVersion(t *testing.T, opts Options, name string) string {
	t.Helper()
	set, _, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if m := set.Module(name); m != nil {
		return m.Version
	}
	return ""
}

func TestInstallUseRollbackPinRemove(t *testing.T) {
	root, src := t.TempDir(), t.TempDir()
	opts := OptionsAt(root)
	if v := selectedVersion(t, opts, "web-nginx"); v != "1.0.0" {
		t.Fatalf("default web-nginx = %q, want the built-in 1.0.0", v)
	}

	// A newer version is installed and selected; the built-in goes to history.
	res, _, err := Install(opts, nginxV(t, src, "1.1.0", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Selected || res.Already || res.Status.Selected != "1.1.0" || !reflect.DeepEqual(res.Status.History, []string{"1.0.0"}) {
		t.Fatalf("install 1.1.0: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(opts.InstallDir, "web-nginx", "1.1.0.toml")); err != nil {
		t.Fatal(err)
	}
	if v := selectedVersion(t, opts, "web-nginx"); v != "1.1.0" {
		t.Fatalf("after install: %q", v)
	}

	// The same content again is a no-op; other content is refused.
	res, _, err = Install(opts, nginxV(t, src, "1.1.0", "a"))
	if err != nil || !res.Already {
		t.Fatalf("reinstall same content: %+v, %v", res, err)
	}
	_, _, err = Install(opts, nginxV(t, src, "1.1.0", "b"))
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "versions are immutable") {
		t.Fatalf("reinstall other content: %v", err)
	}
	_, _, err = Install(opts, nginxV(t, src, "1.0.0", "differs from the built-in"))
	if !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "builtin/web-nginx.toml") {
		t.Fatalf("install over the built-in version: %v", err)
	}

	// Rollback selects the previous version and pins it.
	st, _, err := Rollback(opts, "web-nginx")
	if err != nil {
		t.Fatal(err)
	}
	if st.Selected != "1.0.0" || !st.Pinned || st.Origin != OriginBuiltin || len(st.History) != 0 {
		t.Fatalf("rollback: %+v", st)
	}
	if _, _, err := Rollback(opts, "web-nginx"); !errors.Is(err, ErrState) {
		t.Fatalf("second rollback with no history: %v", err)
	}

	// Pinned: a newer install is kept but not selected.
	res, _, err = Install(opts, nginxV(t, src, "1.2.0", "c"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Selected || !strings.Contains(res.NotSelected, "pinned at 1.0.0") {
		t.Fatalf("install while pinned: %+v", res)
	}
	if v := selectedVersion(t, opts, "web-nginx"); v != "1.0.0" {
		t.Fatalf("pinned module moved to %q", v)
	}

	// use is the operator's choice: it moves a pinned module, which stays pinned.
	st, _, err = Use(opts, "web-nginx", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Selected != "1.2.0" || !st.Pinned || !reflect.DeepEqual(st.History, []string{"1.0.0"}) {
		t.Fatalf("use 1.2.0: %+v", st)
	}
	if _, _, err := Use(opts, "web-nginx", "9.9.9"); !errors.Is(err, ErrState) {
		t.Fatalf("use of a version not installed: %v", err)
	}

	// remove refuses the selected version and built-ins, removes the others.
	if _, err := Remove(opts, "web-nginx", "1.2.0"); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "selected") {
		t.Fatalf("remove selected: %v", err)
	}
	if _, err := Remove(opts, "web-nginx", "1.0.0"); !errors.Is(err, ErrState) || !strings.Contains(err.Error(), "builtin") {
		t.Fatalf("remove built-in: %v", err)
	}
	if _, err := Remove(opts, "web-nginx", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(opts.InstallDir, "web-nginx", "1.1.0.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("1.1.0 still there: %v", err)
	}

	// unpin: the next newer install is selected again.
	if st, _, err = Unpin(opts, "web-nginx"); err != nil || st.Pinned {
		t.Fatalf("unpin: %+v %v", st, err)
	}
	res, _, err = Install(opts, nginxV(t, src, "1.3.0", "d"))
	if err != nil || !res.Selected {
		t.Fatalf("install after unpin: %+v %v", res, err)
	}
	if st, _, err = Pin(opts, "web-nginx"); err != nil || !st.Pinned || st.Selected != "1.3.0" {
		t.Fatalf("pin: %+v %v", st, err)
	}

	list, _, err := List(opts)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(s Status) bool { return s.Name == "web-nginx" })
	if i < 0 {
		t.Fatal("web-nginx not listed")
	}
	var vs []string
	for _, a := range list[i].Available {
		vs = append(vs, a.Version+"/"+a.Origin)
	}
	if want := []string{"1.0.0/builtin", "1.2.0/installed", "1.3.0/installed"}; !reflect.DeepEqual(vs, want) {
		t.Errorf("available = %v, want %v", vs, want)
	}

	m, st, _, err := Show(opts, "web-nginx@1.2.0")
	if err != nil || m.Version != "1.2.0" || st.Selected != "1.3.0" || !strings.Contains(string(m.Raw()), "# c") {
		t.Fatalf("show: %+v %+v %v", m, st, err)
	}
}

// An install that would leave a selected set with a conflict writes
// nothing.
func TestInstallNeverHalfInstalls(t *testing.T) {
	root, src := t.TempDir(), t.TempDir()
	opts := OptionsAt(root)
	bad := filepath.Join(src, "my-web.toml")
	os.WriteFile(bad, []byte("schema = 2\nname = \"my-web\"\nversion = \"1.0.0\"\nkind = \"web\"\ntracked = [\"/etc/nginx/sites-enabled\"]\n"), 0o644)
	_, _, err := Install(opts, bad)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `overlaps "/etc/nginx", tracked by module web-nginx`) {
		t.Fatalf("err = %v", err)
	}
	for _, p := range []string{opts.InstallDir, opts.SelectionFile} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s was written: %v", p, err)
		}
	}
}

func TestDisableBuiltinAndSelectAnother(t *testing.T) {
	opts := OptionsAt(t.TempDir())
	if _, _, err := Use(opts, "web-apache2", "1.0.0"); err == nil || !strings.Contains(err.Error(), `probe "web" is also defined`) {
		t.Fatalf("apache2 beside nginx: %v", err)
	}
	if _, _, err := Disable(opts, "web-nginx"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Use(opts, "web-apache2", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	set, _, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if set.Module("web-nginx") != nil || set.Module("web-apache2") == nil {
		t.Fatalf("modules: %v", names(set))
	}
	if !slices.Contains(set.TrackedPaths(), "/etc/apache2") || slices.Contains(set.TrackedPaths(), "/etc/nginx") {
		t.Errorf("tracked: %v", set.TrackedPaths())
	}
	if _, _, err := Enable(opts, "web-nginx"); err == nil {
		t.Fatal("enabling nginx beside apache2 was accepted")
	}
}

func names(s *Set) []string {
	var out []string
	for _, m := range s.Modules() {
		out = append(out, m.Name)
	}
	return out
}

func TestModulesDOverridesBuiltin(t *testing.T) {
	opts := testdataOptions(t)
	b, _ := builtinFS.ReadFile("builtin/db-mariadb.toml")
	s := strings.Replace(string(b), `version = "1.0.0"`, `version = "1.4.0"`, 1)
	s = strings.Replace(s, `order = 31`, `order = 5`, 1)
	os.WriteFile(filepath.Join(opts.Dir, "mariadb.toml"), []byte(s), 0o644)
	set, _, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	m := set.Module("db-mariadb")
	if m == nil || m.Version != "1.4.0" || m.Origin != OriginLocal {
		t.Fatalf("db-mariadb = %+v", m)
	}
	if u := set.Units()[0]; u.Name != "mariadb.service" || u.Module != "db-mariadb" {
		t.Errorf("first unit = %+v, want mariadb.service (order 5)", u)
	}
}

func TestNewerSchemaLoadsWithWarnings(t *testing.T) {
	opts := testdataOptions(t)
	copyFile(t, "testdata/golden/schema3.toml", filepath.Join(opts.Dir, "office-app.toml"))
	set, warns, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if set.Module("office-app") == nil {
		t.Fatal("schema 3 module not selected")
	}
	if len(warns) != 4 || warns[0].Key != "maintainer" || warns[0].Line != 9 {
		t.Fatalf("warnings = %v", warns)
	}
	if got := warns[1].String(); got != filepath.Join(opts.Dir, "office-app.toml")+`:13:1: key "units[1].after": unknown key of schema 3 (this binary knows schemas 1 to 2): ignored` {
		t.Errorf("warning text: %s", got)
	}
}

func TestExecutablesAllowed(t *testing.T) {
	opts := testdataOptions(t)
	copyFile(t, "testdata/golden/schema2.toml", filepath.Join(opts.Dir, "office-app.toml"))
	set, _, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Executables(); !reflect.DeepEqual(got, []string{"/etc/office-app/hooks/rotate"}) {
		t.Errorf("Executables = %v", got)
	}
	if got := set.Packages(); !slices.Contains(got, "office-tools") || !slices.Contains(got, "nginx") {
		t.Errorf("Packages = %v", got)
	}
	// Without the package's file list the executable is refused.
	opts.DpkgRoot = t.TempDir()
	if _, _, err := Load(opts); err == nil || !strings.Contains(err.Error(), "not installed: office-app, office-tools") {
		t.Errorf("no dpkg lists: %v", err)
	}
}

func TestSelectionFile(t *testing.T) {
	opts := OptionsAt(t.TempDir())
	sel := &Selection{Modules: map[string]*Choice{
		"web-nginx":   {Version: "1.0.0", Pinned: true, History: []string{"0.9.0"}},
		"web-apache2": {Disabled: true},
	}}
	if err := sel.write(opts.SelectionFile); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSelection(opts.SelectionFile)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Modules, sel.Modules) {
		t.Errorf("read back %+v, wrote %+v", back.Modules, sel.Modules)
	}

	for _, tc := range []struct{ text, want string }{
		{"[modules.web-nginx]\nversion = \"2.0.0\"\n", `modules.toml:2:1: key "modules.web-nginx.version": version 2.0.0 of module web-nginx is not available (available: 1.0.0 (builtin))`},
		{"[modules.web-nginx]\nversoin = \"1.0.0\"\n", `modules.toml:2:1: key "modules.web-nginx.versoin": unknown key`},
		{"[modules.web-nginx]\nhistory = [\"1\"]\n", `modules.toml:2:1: key "modules.web-nginx.history": entry 1: "1" is not a version`},
		{"[modules.Web]\n", `modules.toml:1:1: key "modules.Web": "Web" is not a valid module name`},
	} {
		os.WriteFile(opts.SelectionFile, []byte(tc.text), 0o644)
		_, _, err := Load(opts)
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %s", tc.text, err, tc.want)
		}
	}
}

func TestHistoryIsBounded(t *testing.T) {
	ch := &Choice{}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.0.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0"} {
		ch.push(v)
	}
	if want := []string{"1.0.0", "1.3.0", "1.4.0", "1.5.0", "1.6.0"}; !reflect.DeepEqual(ch.History, want) {
		t.Errorf("history = %v, want %v", ch.History, want)
	}
}
