package modules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrState is wrapped by a refusal that is about the modules' state (a
// version that is not there, removing the selected one), not a bad file.
var ErrState = errors.New("module state")

func stateErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrState, fmt.Sprintf(format, args...))
}

// Status is one module as `sentry modules list` shows it.
type Status struct {
	Name      string      `json:"name"`
	Kind      string      `json:"kind"`
	Selected  string      `json:"selected,omitempty"` // the version in use; "" when not selected
	Origin    string      `json:"origin,omitempty"`   // of the selected version
	Source    string      `json:"source,omitempty"`   // its file
	Pinned    bool        `json:"pinned"`
	Disabled  bool        `json:"disabled"`
	History   []string    `json:"history"` // versions selected before, oldest first
	Available []Available `json:"available"`
}

func (c *catalog) status(name string, set *Set) Status {
	st := Status{Name: name, History: []string{}, Available: c.available(name)}
	if ch := c.sel.Modules[name]; ch != nil {
		st.Pinned, st.Disabled = ch.Pinned, ch.Disabled
		st.History = append(st.History, ch.History...)
	}
	var m *Manifest
	if set != nil {
		m = set.Module(name)
	}
	if m != nil {
		st.Selected, st.Origin, st.Source, st.Kind = m.Version, m.Origin, m.Source, m.Kind
	} else if n := len(st.Available); n > 0 {
		if am, err := c.get(name, st.Available[n-1].Version); err == nil && am != nil {
			st.Kind = am.Kind
		}
	}
	return st
}

// List returns every module known: built-in, in modules.d, installed or
// named by the selection, with the version selected.
func List(opts Options) ([]Status, []Warning, error) {
	c, err := openCatalog(opts)
	if err != nil {
		return nil, nil, err
	}
	set, err := c.resolveAll(c.sel)
	if err != nil {
		return nil, c.warns, err
	}
	var out []Status
	for _, n := range c.names(c.sel) {
		out = append(out, c.status(n, set))
	}
	return out, c.warns, nil
}

// Show returns a module's manifest: the version ref names
// ("NAME@VERSION"), else the selected one, else the newest available.
func Show(opts Options, ref string) (*Manifest, Status, []Warning, error) {
	name, version, err := ParseRef(ref)
	if err != nil {
		return nil, Status{}, nil, err
	}
	c, err := openCatalog(opts)
	if err != nil {
		return nil, Status{}, nil, err
	}
	set, err := c.resolveAll(c.sel)
	if err != nil {
		return nil, Status{}, c.warns, err
	}
	st := c.status(name, set)
	if version == "" {
		version = st.Selected
	}
	if version == "" && len(st.Available) > 0 {
		version = st.Available[len(st.Available)-1].Version
	}
	m, err := c.get(name, version)
	if err == nil && m == nil {
		err = stateErr("no module %s", ref)
		if version != "" && len(st.Available) > 0 {
			err = stateErr("module %s has no version %s (available: %s)", name, version, versionList(st.Available))
		}
	}
	if err != nil {
		return nil, Status{}, c.warns, err
	}
	return m, st, c.warns, nil
}

// Raw is the manifest's text as written.
func (m *Manifest) Raw() []byte { return append([]byte(nil), m.raw...) }

// InstallResult says what Install did.
type InstallResult struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path"`              // where the version is installed
	Already bool   `json:"already,omitempty"` // the same content was there
	// Selected: the selection now names this version. NotSelected says why
	// not otherwise.
	Selected    bool   `json:"selected"`
	NotSelected string `json:"not_selected,omitempty"`
	Status      Status `json:"status"`
}

// Install checks the manifest in file and installs it as
// InstallDir/NAME/VERSION.toml. A version that exists with other content is
// refused (versions are immutable). Unless the module is pinned or
// disabled, the new version is selected when it is newer than the one in
// use; the whole selected set is checked first, so nothing is written when
// it would be refused.
func Install(opts Options, file string) (*InstallResult, []Warning, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("read module manifest: %w", err)
	}
	m, warns, err := Parse(file, data)
	if err != nil {
		return nil, warns, err
	}
	if err := m.CheckExecutables(opts.DpkgRoot); err != nil {
		return nil, warns, err
	}
	c, err := openCatalog(opts)
	if err != nil {
		return nil, warns, err
	}
	warns = append(warns, c.warns...)
	dest := filepath.Join(opts.InstallDir, m.Name, m.Version+".toml")
	res := &InstallResult{Name: m.Name, Version: m.Version, Path: dest}
	existing, err := c.get(m.Name, m.Version)
	if err != nil {
		return nil, warns, err
	}
	if existing != nil {
		if !existing.sameContent(data) {
			return nil, warns, stateErr("%s@%s already exists (%s) with other content; versions are immutable: give the new manifest a new version", m.Name, m.Version, existing.Source)
		}
		res.Already, res.Path = true, existing.Source
	} else {
		m.Origin = OriginInstalled
		if c.installed[m.Name] == nil {
			c.installed[m.Name] = map[string]string{}
		}
		c.installed[m.Name][m.Version] = dest
		c.parsed[dest] = m
	}

	sel := c.sel.clone()
	cur, err := c.resolve(m.Name, c.sel)
	if err != nil {
		cur = nil // the current choice is broken: the new version repairs it
	}
	ch := sel.Modules[m.Name]
	switch {
	case ch != nil && ch.Pinned:
		res.NotSelected = fmt.Sprintf("%s is pinned at %s", m.Name, ch.Version)
	case ch != nil && ch.Disabled:
		res.NotSelected = m.Name + " is disabled"
	case cur != nil && compareVersions(m.Version, cur.Version) <= 0:
		res.NotSelected = fmt.Sprintf("%s %s is selected, which is not older", m.Name, cur.Version)
	default:
		ch = sel.entry(m.Name)
		if cur != nil {
			ch.push(cur.Version)
		}
		ch.Version = m.Version
		res.Selected = true
	}
	var set *Set
	if res.Selected {
		if set, err = c.resolveAll(sel); err != nil {
			return nil, warns, err
		}
	}
	if !res.Already {
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return nil, warns, fmt.Errorf("install module: %w", err)
		}
		if err := writeFile(dest, data); err != nil {
			return nil, warns, fmt.Errorf("install module: %w", err)
		}
		m.Source = dest
	}
	if res.Selected {
		if err := sel.write(opts.SelectionFile); err != nil {
			return nil, warns, fmt.Errorf("%s@%s is installed but not selected: %w", m.Name, m.Version, err)
		}
		c.sel = sel
	} else if set, err = c.resolveAll(c.sel); err != nil {
		set = nil
	}
	res.Status = c.status(m.Name, set)
	return res, warns, nil
}

// change applies f to a copy of the selection, checks the resulting set and
// writes the selection.
func change(opts Options, name string, f func(c *catalog, sel *Selection, cur *Manifest) error) (Status, []Warning, error) {
	if !nameRe.MatchString(name) {
		return Status{}, nil, fmt.Errorf("%q is not a module name: use lower-case letters, digits and '-'", name)
	}
	c, err := openCatalog(opts)
	if err != nil {
		return Status{}, nil, err
	}
	if len(c.available(name)) == 0 && c.sel.Modules[name] == nil {
		return Status{}, c.warns, stateErr("no module %s (see sentry modules list)", name)
	}
	cur, err := c.resolve(name, c.sel)
	if err != nil {
		cur = nil
	}
	sel := c.sel.clone()
	if err := f(c, sel, cur); err != nil {
		return Status{}, c.warns, err
	}
	set, err := c.resolveAll(sel)
	if err != nil {
		return Status{}, c.warns, err
	}
	if err := sel.write(opts.SelectionFile); err != nil {
		return Status{}, c.warns, err
	}
	c.sel = sel
	return c.status(name, set), c.warns, nil
}

// Use selects a version of a module that is available (installed, in
// modules.d or built in). The version in use before goes to the history.
// A pinned module stays pinned, at the new version: use is the operator's
// own choice.
func Use(opts Options, name, version string) (Status, []Warning, error) {
	return change(opts, name, func(c *catalog, sel *Selection, cur *Manifest) error {
		m, err := c.get(name, version)
		if err != nil {
			return err
		}
		if m == nil {
			return stateErr("module %s has no version %s (available: %s); install it first", name, version, versionList(c.available(name)))
		}
		ch := sel.entry(name)
		if cur != nil && cur.Version != version {
			ch.push(cur.Version)
		}
		ch.Version, ch.Disabled = version, false
		return nil
	})
}

// Rollback selects the version selected before the current one (the last
// of the history) and pins it, so that no install selects a newer version
// behind the operator's back. The version rolled back from is not added to
// the history: a second rollback goes further back.
func Rollback(opts Options, name string) (Status, []Warning, error) {
	return change(opts, name, func(c *catalog, sel *Selection, cur *Manifest) error {
		ch := sel.entry(name)
		if len(ch.History) == 0 {
			return stateErr("module %s has no previous version to roll back to", name)
		}
		prev := ch.History[len(ch.History)-1]
		m, err := c.get(name, prev)
		if err != nil {
			return err
		}
		if m == nil {
			return stateErr("the previous version of %s, %s, is no longer available (available: %s)", name, prev, versionList(c.available(name)))
		}
		ch.History = ch.History[:len(ch.History)-1]
		ch.Version, ch.Pinned, ch.Disabled = prev, true, false
		return nil
	})
}

// Pin keeps the module at the version in use: an install of a newer one
// does not select it.
func Pin(opts Options, name string) (Status, []Warning, error) {
	return change(opts, name, func(c *catalog, sel *Selection, cur *Manifest) error {
		if cur == nil {
			return stateErr("module %s is not selected; select a version with sentry modules use %s@VERSION", name, name)
		}
		ch := sel.entry(name)
		ch.Version, ch.Pinned = cur.Version, true
		return nil
	})
}

// Unpin lets an install of a newer version select it again. The version in
// use stays.
func Unpin(opts Options, name string) (Status, []Warning, error) {
	return change(opts, name, func(c *catalog, sel *Selection, cur *Manifest) error {
		if ch := sel.Modules[name]; ch != nil {
			ch.Pinned = false
		}
		return nil
	})
}

// Disable unselects a module (a built-in selected by default, say).
func Disable(opts Options, name string) (Status, []Warning, error) {
	return change(opts, name, func(c *catalog, sel *Selection, cur *Manifest) error {
		sel.entry(name).Disabled = true
		return nil
	})
}

// Enable selects a module again, or for the first time (in its version
// named by the selection, else its default version).
func Enable(opts Options, name string) (Status, []Warning, error) {
	return change(opts, name, func(c *catalog, sel *Selection, cur *Manifest) error {
		sel.entry(name).Disabled = false
		return nil
	})
}

// Remove deletes an installed version. It refuses the version in use (or
// named by the selection), and versions that are built in or in modules.d.
func Remove(opts Options, name, version string) ([]Warning, error) {
	c, err := openCatalog(opts)
	if err != nil {
		return nil, err
	}
	f := c.installed[name][version]
	if f == "" {
		for _, a := range c.available(name) {
			if a.Version == version {
				return c.warns, stateErr("%s@%s is not installed but %s (%s): sentry does not remove it", name, version, a.Origin, a.Source)
			}
		}
		return c.warns, stateErr("%s@%s is not installed (available: %s)", name, version, versionList(c.available(name)))
	}
	cur, _ := c.resolve(name, c.sel)
	ch := c.sel.Modules[name]
	if (cur != nil && cur.Source == f) || (ch != nil && ch.Version == version) {
		return c.warns, stateErr("%s@%s is the selected version; select another first (sentry modules use %s@VERSION)", name, version, name)
	}
	if ch != nil && contains(ch.History, version) {
		sel := c.sel.clone()
		h := sel.Modules[name].History[:0]
		for _, v := range sel.Modules[name].History {
			if v != version {
				h = append(h, v)
			}
		}
		sel.Modules[name].History = h
		if err := sel.write(opts.SelectionFile); err != nil {
			return c.warns, err
		}
	}
	if err := os.Remove(f); err != nil {
		return c.warns, fmt.Errorf("remove module: %w", err)
	}
	_ = os.Remove(filepath.Dir(f)) // only when empty
	return c.warns, nil
}
