package tui

import (
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/sentryha/sentry/internal/agent/modset"
	"github.com/sentryha/sentry/modules"
)

// modItem is one line of the Modules screen that the cursor stops on: a
// version of a module (av nil: the module has none available).
type modItem struct {
	mod *modset.Module
	av  *modules.Available
}

// modItems are the modules' versions that match the filter, by module.
func modItems(l *modset.List, f string) []modItem {
	if l == nil {
		return nil
	}
	var out []modItem
	for i := range l.Modules {
		m := &l.Modules[i]
		if len(m.Available) == 0 {
			if matches(f, m.Name, m.Kind) {
				out = append(out, modItem{mod: m})
			}
			continue
		}
		for j := range m.Available {
			a := &m.Available[j]
			if matches(f, m.Name, m.Kind, a.Version, a.Origin) {
				out = append(out, modItem{mod: m, av: a})
			}
		}
	}
	return out
}

// previous is the version a rollback of m selects: the last one used
// before ("" when none).
func previous(m *modset.Module) string {
	if n := len(m.History); n > 0 {
		return m.History[n-1]
	}
	return ""
}

// inUse says whether a is the version of m in use.
func inUse(m *modset.Module, a *modules.Available) bool {
	return a != nil && m.Selected == a.Version && (m.Origin == "" || m.Origin == a.Origin)
}

// modulesScreen is every module with its versions (the cursor on one),
// the one in use, pinned and what is held back; enter opens one module.
func modulesScreen(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	hint := "  u: use the version" + th.sep + "R: roll back (both ask first)" + th.sep + "enter: more"
	if l := d.modules; l != nil && l.Secondary {
		hint = "  enter: more" + th.sep + "/ filters"
	}
	p.add(c.section("Modules") + th.dim.Render(hint))
	if e := d.errs[keyModules]; e != "" {
		p.add(wrap(th.bad.Render("modules: ")+c.t(e)+" (sentry modules list shows them)", c.w, "  ")...)
	}
	l := d.modules
	if l == nil {
		if d.errs[keyModules] == "" {
			p.add(th.dim.Render("  not known yet"))
		}
		return p
	}
	if l.Secondary {
		p.add(wrap(th.dim.Render("This secondary follows the primary's selection (use and roll back there)."), c.w, "  ")...)
	}
	// What either secondary holds back (the status says it of both
	// nodes; the list, of this one).
	held := false
	if st := d.state; st != nil {
		for _, n := range st.Nodes {
			if len(n.BoundaryPending) > 0 {
				held = true
				p.add(wrap(th.warn.Render("held back on "+c.t(n.Name)+" until approved there: ")+c.t(strings.Join(n.BoundaryPending, ", "))+" (sentry modules approve on "+c.t(n.Name)+")", c.w, "  ")...)
			}
		}
	}
	if !held && len(l.Pending) > 0 {
		p.add(wrap(th.warn.Render("held back on this node until approved: ")+c.t(strings.Join(l.Pending, ", "))+" (sentry modules approve)", c.w, "  ")...)
	}
	for _, w := range l.Warnings {
		p.add(wrap(th.warn.Render("warning: ")+c.t(w), c.w, "  ")...)
	}
	if r := d.parity; r != nil && len(r.Drift.ModuleGaps) > 0 {
		p.add(wrap(th.warn.Render("needed by a module, on neither node: ")+c.t(strings.Join(r.Drift.ModuleGaps, ", ")), c.w, "  ")...)
	}
	items := modItems(l, c.v.filter)
	if len(items) == 0 {
		p.add(th.dim.Render("  no module" + map[bool]string{true: " matches the filter", false: ""}[c.v.filter != ""]))
		return p
	}
	p.items = len(items)
	cur := min(c.v.cursor, len(items)-1)
	var last *modset.Module
	for i, it := range items {
		m := it.mod
		if m != last {
			last = m
			p.add(strings.TrimRight("  "+th.bold.Render(cell(c.t(m.Name), 22))+" "+cell(c.t(dash(m.Kind)), 8)+moduleState(c, m), " "))
		}
		mark := "  "
		if i == cur {
			p.sel = len(p.lines)
			mark = th.sel.Render(">") + " "
		}
		if it.av == nil {
			p.add(mark + "    " + th.dim.Render("no version available (sentry modules install FILE)"))
			continue
		}
		ver := cell(c.t(it.av.Version), 10)
		if i == cur {
			ver = th.sel.Render(ver)
		}
		line := mark + "    " + ver + " " + cell(c.t(it.av.Origin), 10)
		var tags []string
		if inUse(m, it.av) {
			tags = append(tags, th.ok.Render("in use"))
		}
		if previous(m) == it.av.Version && !inUse(m, it.av) {
			tags = append(tags, "used before (R goes back to it)")
		}
		p.add(strings.TrimRight(line+" "+strings.Join(tags, th.sep), " "))
	}
	p.detail = moduleView(c, items[cur].mod)
	return p
}

// moduleState is a module's state in words: pinned, disabled, not
// selected, held back.
func moduleState(c *rctx, m *modset.Module) string {
	th := c.th
	var w []string
	switch {
	case m.Disabled:
		w = append(w, th.warn.Render("disabled"))
	case m.Selected == "":
		w = append(w, th.dim.Render("not selected"))
	}
	if m.Pinned {
		w = append(w, "pinned")
	}
	if len(m.HeldBack) > 0 {
		w = append(w, th.warn.Render("held back: "+c.t(strings.Join(m.HeldBack, " "))))
	}
	return strings.Join(w, th.sep)
}

// moduleView is one module opened: its state, its versions and files, its
// packages on both nodes and the module events.
func moduleView(c *rctx, m *modset.Module) []string {
	th, d := c.th, c.d
	out := []string{th.bold.Render("module " + c.t(m.Name) + " (" + c.t(dash(m.Kind)) + ")")}
	if m.Selected != "" {
		out = append(out, wrap(fmt.Sprintf("  in use: %s, %s, %s", c.t(m.Selected), c.t(m.Origin), c.t(m.Source)), c.w, "    ")...)
	} else {
		out = append(out, "  in use: none (not selected)")
	}
	state := moduleState(c, m)
	out = append(out, "  state: "+map[bool]string{true: state, false: "selected, not pinned"}[state != ""])
	if len(m.History) > 0 {
		out = append(out, wrap("  used before, oldest first: "+c.t(strings.Join(m.History, ", "))+"; R selects "+c.t(previous(m))+" and pins it", c.w, "    ")...)
	} else {
		out = append(out, "  used before: none (nothing to roll back to)")
	}
	out = append(out, "", c.section("Versions"))
	for _, a := range m.Available {
		tag := ""
		if inUse(m, &a) {
			tag = "  " + th.ok.Render("in use")
		}
		out = append(out, "  "+cell(c.t(a.Version), 10)+" "+cell(c.t(a.Origin), 10)+" "+c.t(a.Source)+tag)
	}
	if len(m.Available) == 0 {
		out = append(out, "  none available (sentry modules install FILE)")
	}
	if len(m.HeldBack) > 0 {
		out = append(out, "", c.section("Held back on this secondary"))
		out = append(out, wrap("  "+c.t(strings.Join(m.HeldBack, ", "))+": the primary's version asks to write it here; sentry modules approve (on this node) lets it in", c.w, "    ")...)
	}
	out = append(out, "", c.section("Packages, P against S"))
	switch r := d.parity; {
	case r == nil:
		out = append(out, th.dim.Render("  not known yet"))
	default:
		n := 0
		for _, it := range r.Drift.Items {
			if it.Module == m.Name {
				n++
				out = append(out, "  "+c.t(fmt.Sprintf("%s %s (P %s, S %s)", it.Kind, it.Name, dash(it.P), dash(it.S))))
			}
		}
		if n == 0 {
			out = append(out, "  no difference")
		}
	}
	out = append(out, "", c.section("Module events"))
	n := 0
	for _, e := range d.events {
		if !strings.HasPrefix(e.Kind, "modules-") && e.Kind != "boundary-pending" {
			continue
		}
		if mod := e.Fields["module"]; mod != "" && mod != m.Name {
			continue // another module's
		}
		n++
		out = append(out, wrap("  "+e.Time.UTC().Format("2006-01-02 15:04")+"  "+c.t(e.Node)+"  "+c.t(e.Message), c.w, "    ")...)
	}
	if n == 0 {
		out = append(out, "  none among the newest events")
	}
	return out
}

// selectedModule is the item under the cursor on the Modules screen.
func (m *Model) selectedModule() (modItem, bool) {
	items := modItems(m.d.modules, m.views[scrModules].filter)
	if c := m.views[scrModules].cursor; c < len(items) {
		return items[c], true
	}
	return modItem{}, false
}

// modulesRefused says why this node does not change the selection (the
// secondary follows the primary's), "" when it does.
func (m *Model) modulesRefused() string {
	secondary := m.d.modules != nil && m.d.modules.Secondary
	if self := m.d.self(); self != nil && self.Role == "secondary" {
		secondary = true
	}
	if secondary {
		return "use and rollback are done on the primary: this secondary follows its selection"
	}
	return ""
}

// askUse asks before it selects the version under the cursor.
func (m *Model) askUse() tea.Cmd {
	it, ok := m.selectedModule()
	switch {
	case !ok:
		m.note, m.noteBad = "no module selected", true
	case m.modulesRefused() != "":
		m.note, m.noteBad = m.modulesRefused(), true
	case it.av == nil:
		m.note, m.noteBad = it.mod.Name+" has no version to select (sentry modules install FILE)", true
	case inUse(it.mod, it.av):
		m.note, m.noteBad = it.mod.Name+" "+it.av.Version+" is the version in use", false
	default:
		what := fmt.Sprintf("Select %s %s (%s", it.mod.Name, it.av.Version, it.av.Origin)
		if it.mod.Selected != "" {
			what += "; in use now: " + it.mod.Selected
		}
		what += ")"
		if it.mod.Pinned {
			what += "; it stays pinned, at the new version"
		}
		m.ask = &question{what: "selecting " + it.mod.Name + " " + it.av.Version, yes: m.f.useModule(it.mod.Name, it.av.Version),
			text: m.th.clean(what) + "? The secondary follows. [y/N]"}
	}
	return nil
}

// askModuleRollback asks before it rolls the module under the cursor back
// to the version used before, and pins it.
func (m *Model) askModuleRollback() tea.Cmd {
	it, ok := m.selectedModule()
	switch {
	case !ok:
		m.note, m.noteBad = "no module selected", true
	case m.modulesRefused() != "":
		m.note, m.noteBad = m.modulesRefused(), true
	case previous(it.mod) == "":
		m.note, m.noteBad = it.mod.Name+" has no version used before: nothing to roll back to", true
	default:
		what := fmt.Sprintf("Go back to the version of %s used before, and pin it (in use: %s, before it: %s)", it.mod.Name, dash(it.mod.Selected), previous(it.mod))
		m.ask = &question{what: "rolling " + it.mod.Name + " back", yes: m.f.rollbackModule(it.mod.Name),
			text: m.th.clean(what) + "? The secondary follows. [y/N]"}
	}
	return nil
}

// modChanged is the note after a change of module m.
func modChanged(st modules.Status, warns []string) string {
	s := st.Name + ": " + dash(st.Selected) + " selected"
	if st.Origin != "" {
		s += " (" + st.Origin + ")"
	}
	if st.Pinned {
		s += ", pinned"
	}
	s += "; the secondary follows"
	if len(warns) > 0 {
		s += "; " + plural(len(warns), "warning(s): sentry modules list")
	}
	return s
}

// setModule puts st in the list in place of its module's row.
func (d *data) setModule(st modules.Status) {
	if d.modules == nil {
		return
	}
	i := slices.IndexFunc(d.modules.Modules, func(m modset.Module) bool { return m.Name == st.Name })
	if i >= 0 {
		d.modules.Modules[i].Status = st
	}
}
