package modules

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/verifier"
)

// Where a manifest came from.
const (
	OriginBuiltin   = "builtin"   // shipped in the binary
	OriginLocal     = "modules.d" // an operator's file in Options.Dir
	OriginInstalled = "installed" // a version under Options.InstallDir
)

// Options say where the module files are; fields so tests (and a system
// mounted elsewhere) can point them at a folder.
type Options struct {
	Dir           string // operators' manifests, *.toml (/etc/sentry/modules.d)
	SelectionFile string // /etc/sentry/modules.toml
	InstallDir    string // installed versions, NAME/VERSION.toml (/var/lib/sentry/modules)
	DpkgRoot      string // the root whose var/lib/dpkg/info lists package files ("/")
	// Follower is set on the secondary, whose manifests are the primary's
	// (through the sync) and may be written for a newer binary: a probe
	// of a kind this binary does not have is then left out with a
	// warning instead of refusing the whole set.
	Follower bool
}

// DefaultOptions are the paths on a node.
func DefaultOptions() Options { return OptionsAt("/") }

// OptionsAt are the default paths under root.
func OptionsAt(root string) Options {
	return Options{
		Dir:           filepath.Join(root, "/etc/sentry/modules.d"),
		SelectionFile: filepath.Join(root, "/etc/sentry/modules.toml"),
		InstallDir:    filepath.Join(root, "/var/lib/sentry/modules"),
		DpkgRoot:      root,
	}
}

// catalog is every manifest available, and the selection.
type catalog struct {
	opts      Options
	builtin   map[string]*Manifest
	local     map[string]*Manifest
	installed map[string]map[string]string // name -> version -> file
	parsed    map[string]*Manifest         // installed file -> manifest
	sel       *Selection
	warns     []Warning
}

func openCatalog(opts Options) (*catalog, error) {
	c := &catalog{opts: opts, builtin: map[string]*Manifest{}, local: map[string]*Manifest{},
		installed: map[string]map[string]string{}, parsed: map[string]*Manifest{}}
	bs, err := Builtins()
	if err != nil {
		return nil, err
	}
	for _, m := range bs {
		c.builtin[m.Name] = m
	}
	files, err := filepath.Glob(filepath.Join(opts.Dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read module manifest: %w", err)
		}
		m, w, err := parse(f, data, c.opts.Follower)
		if err != nil {
			return nil, err
		}
		c.warns = append(c.warns, w...)
		if prev := c.local[m.Name]; prev != nil {
			return nil, m.err("name", "module %q is also defined by %s; modules.d holds one file per module", m.Name, prev.at("name"))
		}
		m.Origin = OriginLocal
		c.local[m.Name] = m
	}
	dirs, err := os.ReadDir(opts.InstallDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("installed modules: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		dir := filepath.Join(opts.InstallDir, d.Name())
		if !nameRe.MatchString(d.Name()) {
			c.warns = append(c.warns, Warning{File: dir, Message: "not a module name: ignored"})
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("installed modules: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			v, ok := strings.CutSuffix(e.Name(), ".toml")
			if _, err := ParseVersion(v); !ok || err != nil {
				c.warns = append(c.warns, Warning{File: filepath.Join(dir, e.Name()), Message: "not VERSION.toml: ignored"})
				continue
			}
			if c.installed[d.Name()] == nil {
				c.installed[d.Name()] = map[string]string{}
			}
			c.installed[d.Name()][v] = filepath.Join(dir, e.Name())
		}
	}
	c.sel, err = ReadSelection(opts.SelectionFile)
	if err != nil {
		return nil, err
	}
	c.warns = append(c.warns, c.sel.Warnings...)
	return c, nil
}

// at is "file:line:col" of a key of the manifest.
func (m *Manifest) at(key string) string {
	l, c := m.loc.Find(key)
	if l == 0 {
		return m.Source
	}
	return fmt.Sprintf("%s:%d:%d", m.Source, l, c)
}

// installedManifest reads an installed version once.
func (c *catalog) installedManifest(name, version string) (*Manifest, error) {
	f := c.installed[name][version]
	if f == "" {
		return nil, nil
	}
	if m := c.parsed[f]; m != nil {
		return m, nil
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("read installed module: %w", err)
	}
	m, w, err := parse(f, data, c.opts.Follower)
	if err != nil {
		return nil, err
	}
	if m.Name != name || m.Version != version {
		return nil, m.err("name", "the file of %s@%s holds %s@%s", name, version, m.Name, m.Version)
	}
	c.warns = append(c.warns, w...)
	m.Origin = OriginInstalled
	c.parsed[f] = m
	return m, nil
}

// get returns the manifest of name at version: installed, else modules.d,
// else built-in; nil when none has that version.
func (c *catalog) get(name, version string) (*Manifest, error) {
	if m, err := c.installedManifest(name, version); m != nil || err != nil {
		return m, err
	}
	if m := c.local[name]; m != nil && m.Version == version {
		return m, nil
	}
	if m := c.builtin[name]; m != nil && m.Version == version {
		return m, nil
	}
	return nil, nil
}

// Available is one version of a module that can be selected.
type Available struct {
	Version string `json:"version"`
	Origin  string `json:"origin"`
	Source  string `json:"source"`
}

// available lists every version of name, oldest first.
func (c *catalog) available(name string) []Available {
	var out []Available
	if m := c.builtin[name]; m != nil {
		out = append(out, Available{m.Version, OriginBuiltin, m.Source})
	}
	if m := c.local[name]; m != nil {
		out = append(out, Available{m.Version, OriginLocal, m.Source})
	}
	for v, f := range c.installed[name] {
		out = append(out, Available{v, OriginInstalled, f})
	}
	sort.SliceStable(out, func(i, j int) bool { return compareVersions(out[i].Version, out[j].Version) < 0 })
	return out
}

func versionList(av []Available) string {
	if len(av) == 0 {
		return "none"
	}
	var vs []string
	for _, a := range av {
		vs = append(vs, a.Version+" ("+a.Origin+")")
	}
	return strings.Join(vs, ", ")
}

// names lists every module the catalog or the selection names.
func (c *catalog) names(sel *Selection) []string {
	set := map[string]bool{}
	for n := range c.builtin {
		set[n] = true
	}
	for n := range c.local {
		set[n] = true
	}
	for n := range c.installed {
		set[n] = true
	}
	for n := range sel.Modules {
		set[n] = true
	}
	return sortedKeys(set)
}

// resolve picks the manifest selected for name, or nil when it is not
// selected:
//   - disabled in the selection: none;
//   - a version in the selection: that version (installed, modules.d or
//     built-in), an error when it is nowhere;
//   - else the modules.d manifest, else the built-in when it is in
//     DefaultSelection or the selection names the module, else (named in
//     the selection) the newest installed version.
func (c *catalog) resolve(name string, sel *Selection) (*Manifest, error) {
	ch := sel.Modules[name]
	switch {
	case ch != nil && ch.Disabled:
		return nil, nil
	case ch != nil && ch.Version != "":
		m, err := c.get(name, ch.Version)
		if err == nil && m == nil {
			err = sel.err("modules."+name+".version", "version %s of module %s is not available (available: %s)", ch.Version, name, versionList(c.available(name)))
		}
		return m, err
	case c.local[name] != nil:
		return c.local[name], nil
	case c.builtin[name] != nil && (ch != nil || contains(DefaultSelection, name)):
		return c.builtin[name], nil
	case ch != nil:
		av := c.available(name)
		if len(av) == 0 {
			return nil, sel.err("modules."+name, "module %s is selected but no version of it is available", name)
		}
		return c.get(name, av[len(av)-1].Version)
	}
	return nil, nil
}

// resolveAll resolves every module and checks the selected set as a whole.
func (c *catalog) resolveAll(sel *Selection) (*Set, error) {
	s := &Set{own: []string{c.opts.SelectionFile, c.opts.Dir, c.opts.InstallDir}}
	for _, name := range c.names(sel) {
		m, err := c.resolve(name, sel)
		if err != nil {
			return nil, err
		}
		if m != nil {
			s.modules = append(s.modules, m)
		}
	}
	sort.SliceStable(s.modules, func(i, j int) bool {
		a, b := s.modules[i], s.modules[j]
		if ka, kb := kindIndex(a.Kind), kindIndex(b.Kind); ka != kb {
			return ka < kb
		}
		return a.Name < b.Name
	})
	for _, m := range s.modules {
		if err := m.CheckExecutables(c.opts.DpkgRoot); err != nil {
			return nil, err
		}
	}
	if err := s.checkClaims(); err != nil {
		return nil, err
	}
	return s, nil
}

func kindIndex(k string) int {
	for i, x := range ServiceKinds {
		if x == k {
			return i
		}
	}
	return len(ServiceKinds)
}

// Load reads the built-ins, modules.d, the installed versions and the
// selection file, and returns the selected modules: per module the version
// the selection names, else the modules.d manifest (which overrides a
// built-in of the same name), else the built-in when it is selected by
// default. Two selected modules that claim the same tracked path (or one
// under the other), unit or probe name are an error naming both.
func Load(opts Options) (*Set, []Warning, error) {
	c, err := openCatalog(opts)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.resolveAll(c.sel)
	return s, c.warns, err
}

// Set is the selected modules, in kind order (web, mail, db, file,
// system), then by name.
type Set struct {
	modules []*Manifest
	own     []string // the module files themselves: always tracked
}

// Modules are the selected manifests.
func (s *Set) Modules() []*Manifest { return append([]*Manifest(nil), s.modules...) }

// Module returns the selected manifest of name, or nil.
func (s *Set) Module(name string) *Manifest {
	for _, m := range s.modules {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// checkClaims refuses two modules claiming one tracked path, unit or probe.
// The error is placed in the manifest that is not built in, when one of the
// two is: that is the file to change.
func (s *Set) checkClaims() error {
	type claim struct {
		m     *Manifest
		key   string
		value string
	}
	conflict := func(a, b claim, what, verb string) error {
		if a.m.Origin == OriginBuiltin && b.m.Origin != OriginBuiltin {
			a, b = b, a
		}
		if a.value != b.value {
			return a.m.err(a.key, "%s %q overlaps %q, %s by module %s (%s)", what, a.value, b.value, verb, b.m.Name, b.m.at(b.key))
		}
		return a.m.err(a.key, "%s %q is also %s by module %s (%s)", what, a.value, verb, b.m.Name, b.m.at(b.key))
	}
	var paths []claim
	units := map[string]claim{}
	probes := map[string]claim{}
	for _, m := range s.modules {
		k := m.keys
		for _, p := range m.Tracked {
			c := claim{m, k.tracked, p}
			for _, o := range paths {
				if overlaps(p, o.value) {
					return conflict(c, o, "tracked path", "tracked")
				}
			}
			paths = append(paths, c)
		}
		for i, u := range m.Units {
			c := claim{m, k.unit(i, "name"), u.Name}
			if o, dup := units[u.Name]; dup {
				return conflict(c, o, "unit", "claimed")
			}
			units[u.Name] = c
		}
		for i, p := range m.Probes {
			c := claim{m, k.probe(i, "name"), p.Name}
			if o, dup := probes[p.Name]; dup {
				return conflict(c, o, "probe", "defined")
			}
			probes[p.Name] = c
		}
	}
	return nil
}

// Probes are the probes of the selected modules for this node, in module
// order, placeholders filled from env.
func (s *Set) Probes(env ProbeEnv) []verifier.Spec {
	var out []verifier.Spec
	for _, m := range s.modules {
		for _, p := range m.Probes {
			out = append(out, env.Spec(p))
		}
	}
	return out
}

// ProbeNames are the names of the probes, in the order of Probes, without
// expanding their parameters (which reads the pinned certificates and
// host keys).
func (s *Set) ProbeNames() []string {
	var out []string
	for _, m := range s.modules {
		for _, p := range m.Probes {
			out = append(out, p.Name)
		}
	}
	return out
}

// ProbeUnits maps each probe's name to the units of its module: a reload
// of one of them can disturb the probe for a moment.
func (s *Set) ProbeUnits() map[string][]string {
	out := map[string][]string{}
	for _, m := range s.modules {
		var units []string
		for _, u := range m.Units {
			units = append(units, u.Name)
		}
		for _, p := range m.Probes {
			out[p.Name] = units
		}
	}
	return out
}

// Units are the units of the selected modules in reload order: by Order,
// then module order, then the order of the manifest.
func (s *Set) Units() []Unit {
	var out []Unit
	for _, m := range s.modules {
		for _, u := range m.Units {
			u.Module = m.Name
			u.Paths = append([]string(nil), u.Paths...)
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order < out[j].Order })
	return out
}

// Trigger ties a path to the unit reloaded when something under it
// changes. It has the shape of synchronizer.RootUnit, so
// synchronizer.RootUnit(t) converts it.
type Trigger struct{ Root, Unit string }

// Triggers are each unit's paths, in reload order.
func (s *Set) Triggers() []Trigger {
	var out []Trigger
	for _, u := range s.Units() {
		for _, p := range u.Paths {
			out = append(out, Trigger{Root: p, Unit: u.Name})
		}
	}
	return out
}

// TrackedPaths are the selected modules' tracked paths, in module order,
// then the module files themselves (the selection file, modules.d and the
// installed versions), so that the secondary follows the primary's
// modules.
func (s *Set) TrackedPaths() []string {
	var out []string
	for _, m := range s.modules {
		out = append(out, m.Tracked...)
	}
	return append(out, s.own...)
}

// NodeKeys are the paths (or patterns) that stay per node, sorted.
func (s *Set) NodeKeys() []string {
	return s.union(func(m *Manifest) []string { return m.NodeKeys })
}

// Packages are the packages of the selected modules, sorted.
func (s *Set) Packages() []string {
	return s.union(func(m *Manifest) []string { return m.Packages })
}

// Executables are the programs allowed to cross from P to S, sorted.
func (s *Set) Executables() []string {
	return s.union(func(m *Manifest) []string { return m.Executables })
}

// CanaryPages are the canary web pages of the selected modules, for
// verifier.Setup: each [canary] page with its marker (the compiled-in
// marker when the module names none), sorted by path, each path once.
func (s *Set) CanaryPages() []verifier.Page {
	seen := map[string]bool{}
	var out []verifier.Page
	for _, m := range s.modules {
		if m.Canary.Page == "" || seen[m.Canary.Page] {
			continue
		}
		seen[m.Canary.Page] = true
		marker := m.Canary.Marker
		if marker == "" {
			marker = verifier.CanaryMarker
		}
		out = append(out, verifier.Page{Path: m.Canary.Page, Marker: marker})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Canaries are the canary data of the selected modules that have some, by
// module name.
func (s *Set) Canaries() map[string]Canary {
	out := map[string]Canary{}
	for _, m := range s.modules {
		if !m.Canary.empty() {
			out[m.Name] = m.Canary
		}
	}
	return out
}

func (s *Set) union(f func(*Manifest) []string) []string {
	set := map[string]bool{}
	for _, m := range s.modules {
		for _, x := range f(m) {
			set[x] = true
		}
	}
	return sortedKeys(set)
}

// sameContent compares a manifest's bytes with data.
func (m *Manifest) sameContent(data []byte) bool { return bytes.Equal(m.raw, data) }

// writeFile writes an installed manifest atomically, read-only: an
// installed version never changes.
func writeFile(path string, data []byte) error { return atomicfile.Write(path, data, 0o444) }
