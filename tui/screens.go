package tui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/failover"
)

// page draws the current screen.
func (m *Model) page() page {
	c := &rctx{d: m.d, th: m.th, w: m.w, now: m.o.now(), v: m.views[m.cur], conn: m.conn}
	switch m.cur {
	case scrOverview:
		return overview(c)
	case scrServices:
		return services(c)
	case scrSync:
		return syncScreen(c)
	case scrPackages:
		return packages(c)
	case scrFailover:
		return failoverScreen(c)
	case scrModules:
		return modulesScreen(c)
	case scrEvents:
		return events(c, m.follow)
	}
	return reportsScreen(c)
}

// statusLine is the line under the tabs.
func (m *Model) statusLine() string {
	return statusLine(&rctx{d: m.d, th: m.th, w: m.w, now: m.o.now(), conn: m.conn})
}

// failoverScreen is the record of the last swap, its phases, the history,
// and the plan.
func failoverScreen(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	p.add(c.section("Failover record"))
	for _, k := range []string{keyFStatus, keyFHistory} {
		if e := d.errs[k]; e != "" {
			p.add(th.bad.Render(k + ": " + c.t(e)))
		}
	}
	switch st := d.fstatus; {
	case st == nil:
		p.add(th.dim.Render("  not known yet"))
	case st.Record == nil:
		p.add("  no disk swap recorded")
	default:
		r := st.Record
		when := "the newest stored"
		if st.ThisBoot {
			when = "this boot's"
		}
		done := th.warn.Render("in progress")
		if r.Complete {
			done = th.ok.Render("complete")
		}
		p.add(wrap(fmt.Sprintf("  %s: %s, %s, disk set %s on %s (from %s), %s", when, c.t(r.ID), c.t(string(r.Kind)), c.t(short(r.DiskSet)), c.t(r.ToMachine), c.t(r.FromMachine), done), c.w, "    ")...)
		if r.PlanID != "" {
			p.add("  plan " + c.t(r.PlanID) + map[bool]string{true: " (forced)", false: ""}[r.Forced])
		}
		if len(st.Missing) > 0 {
			p.add(wrap("  "+th.warn.Render("waits for: ")+c.t(strings.Join(st.Missing, ", ")), c.w, "    ")...)
		}
		if len(st.Phases) > 0 {
			p.add("  phases:")
			for _, ph := range st.Phases {
				dur := ph.Duration.Round(time.Millisecond).String()
				if ph.Missing {
					dur = th.dim.Render("not yet")
				}
				p.add("    " + cell(c.t(ph.Name), 31) + dur)
			}
		}
		if st.Downtime > 0 {
			p.add(fmt.Sprintf("  downtime: %s", (time.Duration(st.Downtime) * time.Millisecond).Round(time.Millisecond)))
		}
		if r.VerdictAfter != "" {
			p.add("  verdict after: " + th.verdict(r.VerdictAfter))
		}
		if st.Check != "" {
			p.add(th.warn.Render("  record check: " + c.t(st.Check)))
		}
	}
	p.add("", c.section("History"))
	if len(d.fhist) == 0 {
		p.add("  none")
	}
	for _, r := range d.fhist {
		done := "complete"
		if !r.Complete {
			done = "incomplete"
		}
		p.add(wrap(fmt.Sprintf("  %s  %s %s, disk set %s: %s %s %s, %s", r.Boot.UTC().Format("2006-01-02 15:04"), c.t(string(r.Kind)), c.t(r.ID), c.t(short(r.DiskSet)),
			c.t(dash(r.FromMachine)), th.arrow, c.t(dash(r.ToMachine)), done), c.w, "      ")...)
	}
	p.add("", c.section("Plan")+th.dim.Render("  p: make and record the plan of a planned swap (asks first)"))
	p.add(planLines(c, d.plan)...)
	return p
}

// planLines is a swap plan as a checklist.
func planLines(c *rctx, pl *failover.Plan) []string {
	th := c.th
	if pl == nil {
		return []string{th.dim.Render("  none made in this session (sentry failover plan makes one too)")}
	}
	out := []string{fmt.Sprintf("  plan %s, %s, verdict %s", c.t(pl.ID), stamp(c.now, pl.At), th.verdict(pl.Verdict))}
	for _, b := range pl.Blocking {
		out = append(out, wrap("  "+th.bad.Render("blocking: ")+c.t(b), c.w, "    ")...)
	}
	for _, w := range pl.Warnings {
		out = append(out, wrap("  "+th.warn.Render("warning: ")+c.t(w), c.w, "    ")...)
	}
	for i, s := range pl.Steps {
		out = append(out, wrap(fmt.Sprintf("  [ ] %d. %s", i+1, c.t(s.Title)), c.w, "         ")...)
		for _, dl := range s.Detail {
			out = append(out, wrap("         "+c.t(dl), c.w, "           ")...)
		}
	}
	if len(pl.After) > 0 {
		out = append(out, "  afterwards:")
		for _, a := range pl.After {
			out = append(out, wrap("    "+th.bullet+" "+c.t(a), c.w, "      ")...)
		}
	}
	return out
}

// events is the event list, the newest last.
func events(c *rctx, follow bool) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	mode := "following: the newest below" + th.sep + "f pauses"
	if !follow {
		mode = "paused" + th.sep + "f follows"
	}
	p.add(c.section("Events") + th.dim.Render("  "+mode+th.sep+"/ filters by kind, node or text"))
	if e := d.errs[keyEvents]; e != "" {
		p.add(th.bad.Render("events: " + c.t(e)))
	}
	var shown []int
	for i, e := range d.events {
		if matches(c.v.filter, e.Kind, e.Node, e.Message) {
			shown = append(shown, i)
		}
	}
	if len(shown) == 0 {
		p.add(th.dim.Render("  no event" + map[bool]string{true: " matches the filter", false: ""}[c.v.filter != ""]))
		return p
	}
	p.items = len(shown)
	cur := min(c.v.cursor, len(shown)-1)
	for i, k := range shown {
		e := d.events[k]
		mark := "  "
		if i == cur {
			mark = th.sel.Render(">") + " "
			p.sel = len(p.lines)
		}
		kind := c.t(e.Kind)
		switch {
		case strings.Contains(kind, "red") || strings.Contains(kind, "failed") || strings.Contains(kind, "unreachable") || strings.Contains(kind, "refused"):
			kind = th.bad.Render(cell(kind, 20))
		case strings.HasPrefix(kind, "alert") || strings.Contains(kind, "drift") || strings.Contains(kind, "warning"):
			kind = th.warn.Render(cell(kind, 20))
		default:
			kind = cell(kind, 20)
		}
		p.add(mark + e.Time.UTC().Format("01-02 15:04:05") + " " + kind + " " + cell(c.t(e.Node), 8) + " " + c.t(e.Message))
	}
	e := d.events[shown[cur]]
	p.detail = append([]string{th.bold.Render(fmt.Sprintf("event %d: %s", e.Seq, c.t(e.Kind))), "  time: " + stamp(c.now, e.Time), "  node: " + c.t(dash(e.Node))},
		wrap("  "+c.t(e.Message), c.w, "    ")...)
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.detail = append(p.detail, wrap("  "+cell(c.t(k), 14)+c.t(e.Fields[k]), c.w, "                ")...)
	}
	return p
}
