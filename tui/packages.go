package tui

import (
	"fmt"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/sentryha/sentry/synchronizer/inventory"
)

// packages is the package drift, cross-boot compatibility both ways, and
// the parity plan.
func packages(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	if e := d.errs[keyParity]; e != "" {
		p.add(wrap(th.bad.Render("parity: ")+c.t(e), c.w, "  ")...)
	}
	r := d.parity
	if r == nil {
		if d.errs[keyParity] == "" {
			p.add(th.dim.Render("Asking the agent for the parity report..."))
		}
		return p
	}
	f := c.v.filter
	dr := r.Drift
	state := th.ok.Render(dr.State)
	if dr.State != "in-step" {
		state = th.warn.Render(dr.State)
	}
	p.add(c.section("Package drift")+"  "+state+th.sep+plural(dr.InStep, "packages in step"),
		"  P "+side(c, dr.P), "  S "+side(c, dr.S))
	shown := 0
	for _, it := range dr.Items {
		if !matches(f, it.Kind, it.Name, it.Module) {
			continue
		}
		shown++
		line := "  " + cell(c.t(it.Kind), 17) + cell(c.t(it.Name), 24) + cell("P "+c.t(dash(it.P)), 18) + cell("S "+c.t(dash(it.S)), 18)
		if it.Module != "" {
			line += " [" + c.t(it.Module) + "]"
		}
		line = strings.TrimRight(line, " ")
		if it.State != "" && it.State != "ok" && it.State != "in-step" {
			line = th.warn.Render(line)
		}
		p.add(line)
	}
	if shown == 0 && len(dr.Items) > 0 {
		p.add(th.dim.Render("  no difference matches the filter"))
	}
	if len(dr.ModuleGaps) > 0 {
		p.add(wrap("  needed by a module, on neither node: "+c.t(strings.Join(dr.ModuleGaps, ", ")), c.w, "    ")...)
	}
	p.add("", c.section("Cross-boot compatibility"))
	p.add(compat(c, "disk set P on S's machine", r.CompatPonB)...)
	p.add(compat(c, "disk set S on P's machine", r.CompatSonA)...)
	if r.ProfileError != "" {
		p.add(th.warn.Render("  profiles: " + c.t(r.ProfileError)))
	}
	p.add("", c.section("Parity plan")+th.dim.Render("  A: apply this node's part (asks first)"))
	p.add(plan(c, r.Plan)...)
	return p
}

func side(c *rctx, s inventory.Side) string {
	if s.State == "missing" {
		return c.th.warn.Render("no inventory")
	}
	out := c.t(dash(s.Node)) + ", taken " + stamp(c.now, s.Taken)
	if s.State != "fresh" {
		out += " " + c.th.warn.Render(s.State)
	}
	return out
}

// compat is one disk set on the other machine, device by device.
func compat(c *rctx, title string, r *inventory.CompatReport) []string {
	th := c.th
	if r == nil {
		return []string{"  " + title + ": " + th.dim.Render("not known")}
	}
	boots := th.ok.Render("boots")
	switch r.Boots {
	case "no":
		boots = th.bad.Render("DOES NOT BOOT")
	case "unknown":
		boots = th.warn.Render("boots: unknown")
	}
	out := []string{fmt.Sprintf("  %s (%s, kernel %s): %s", title, c.t(dash(r.Machine)), c.t(dash(r.Kernel)), boots)}
	if r.MachineFrom != "" {
		out = append(out, wrap("    machine from "+c.t(r.MachineFrom), c.w, "      ")...)
	}
	for _, b := range r.Because {
		out = append(out, wrap("    "+th.bullet+" "+c.t(b), c.w, "      ")...)
	}
	for _, dev := range r.Devices {
		if !matches(c.v.filter, dev.Slot, dev.Class, dev.ID, dev.Driver, dev.Module, dev.Verdict) {
			continue
		}
		line := strings.TrimRight("    "+cell(c.t(dev.Slot), 13)+cell(c.t(dev.Kind), 8)+cell(c.t(dev.ID), 10)+cell(c.t(dash(dev.Driver)), 12)+cell(c.t(dev.Verdict), 13)+c.t(dev.Cause), " ")
		switch dev.Verdict {
		case "fail":
			line = th.bad.Render(line)
		case "unknown":
			line = th.warn.Render(line)
		}
		out = append(out, line)
	}
	return out
}

// plan is the parity plan.
func plan(c *rctx, pl inventory.ParityPlan) []string {
	var out []string
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		out = append(out, "  "+title+":")
		for _, it := range items {
			if matches(c.v.filter, it) {
				out = append(out, "    "+c.t(it))
			}
		}
	}
	inst := func(is []inventory.Install) []string {
		var s []string
		for _, i := range is {
			x := i.String()
			if i.Current != "" {
				x += " (now " + i.Current + ")"
			}
			if i.Downgrade {
				x += " DOWNGRADE"
			}
			s = append(s, x)
		}
		return s
	}
	list("install on S", inst(pl.InstallOnS))
	list("hold on S", pl.HoldOnS)
	list("unhold on S", pl.UnholdOnS)
	list("only on S (listed, never removed)", inst(pl.OnlyOnS))
	var fixes []string
	for _, f := range pl.DiskSetFixes {
		what := f.Package + f.Module + f.Firmware
		fixes = append(fixes, fmt.Sprintf("disk set %s: %s %s for %s: %s", f.DiskSet, f.Action, what, f.Device, f.Reason))
	}
	list("disk set fixes", fixes)
	if len(out) == 0 {
		out = append(out, c.th.ok.Render("  nothing to do"))
	}
	return out
}

// askApply asks before it carries out this node's part of the parity
// plan (installing packages, holds, drivers: what sentry parity apply
// does).
func (m *Model) askApply() tea.Cmd {
	self := m.d.self()
	switch {
	case m.d.parity == nil:
		m.note, m.noteBad = "the parity report is not known yet", true
	case self == nil:
		m.note, m.noteBad = "this node is not known yet", true
	default:
		m.ask = &question{what: "applying the parity plan", yes: m.f.parityApply(self.Name),
			text: "Carry out " + m.th.clean(self.Name) + "'s part of the parity plan now (install what it lists; apt installs only what a signed index vouches for)? [y/N]"}
	}
	return nil
}
