package tui

import (
	"fmt"
	"strings"
)

// syncScreen is the configuration sync: both sides, drift, the log.
func syncScreen(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	if st := d.state; st != nil && st.Sync != nil {
		s := st.Sync
		step := th.ok.Render("in step")
		if !s.InStep {
			step = th.warn.Render("NOT in step")
		}
		p.add(fmt.Sprintf("head (primary) %s%sapplied (secondary) %s%s%s", dash(short(s.Head)), th.sep, dash(short(s.Applied)), th.sep, step))
		if s.Failed != "" {
			p.add(wrap(th.bad.Render("FAILED to apply "+short(s.Failed)+": ")+c.t(dash(s.Error)), c.w, "  ")...)
			if s.Retry != "" {
				p.add(wrap("  may clear by itself: "+c.t(s.Retry), c.w, "    ")...)
			}
		}
		for _, n := range st.Nodes {
			if n.ConfigDrift > 0 {
				p.add(th.warn.Render(fmt.Sprintf("drift on %s: %s edited locally; the next apply overwrites it", c.t(n.Name), plural(n.ConfigDrift, "tracked path(s)"))))
			}
		}
		if len(s.BoundaryPending) > 0 {
			p.add(wrap(th.warn.Render("held back until approved: ")+c.t(strings.Join(s.BoundaryPending, ", ")), c.w, "  ")...)
		}
	} else {
		p.add(th.dim.Render("The sync's state is not known yet."))
	}
	if len(d.drift) > 0 {
		p.add("", c.section("Drift on this node"))
		for _, it := range d.drift {
			p.add("  " + cell(c.t(it.What), 9) + c.t(it.Path))
		}
	}
	p.add("", c.section("Configuration log")+th.dim.Render("  enter: the diff"+th.sep+"R: roll back to it (asks first)"))
	if e := d.errs[keyLog]; e != "" {
		p.add(th.bad.Render("log: " + c.t(e)))
	}
	log := filterLog(d.log, c.v.filter)
	if len(log) == 0 {
		if _, ok := d.at[keyLog]; ok {
			p.add(th.dim.Render("  no commit" + map[bool]string{true: " matches the filter", false: ""}[c.v.filter != ""]))
		}
		return p
	}
	var head, applied, failed string
	if s := d.state; s != nil && s.Sync != nil {
		head, applied, failed = s.Sync.Head, s.Sync.Applied, s.Sync.Failed
	}
	p.items = len(log)
	cur := min(c.v.cursor, len(log)-1)
	for i, e := range log {
		var tags []string
		if e.Commit == head {
			tags = append(tags, "head")
		}
		if e.Commit == applied {
			tags = append(tags, "applied")
		}
		if e.Commit == failed {
			tags = append(tags, th.bad.Render("FAILED"))
		}
		mark := "  "
		id := short(e.Commit)
		if i == cur {
			p.sel = len(p.lines)
			mark, id = "> ", th.sel.Render(id)
		}
		line := mark + id + "  " + e.Time.UTC().Format("2006-01-02 15:04") + "  "
		if len(tags) > 0 {
			line += "[" + strings.Join(tags, ",") + "] "
		}
		line += c.t(e.Subject) + th.dim.Render(" ("+c.t(e.Author)+")")
		p.add(line)
	}
	p.detail = diffView(c, log[cur].Commit)
	return p
}

// diffView is what commit changed.
func diffView(c *rctx, commit string) []string {
	th, d := c.th, c.d
	if e := d.errs[keyDiff+commit]; e != "" {
		return []string{th.bad.Render("diff of " + short(commit) + ": " + c.t(e))}
	}
	r := d.diffs[commit]
	if r == nil {
		return []string{th.dim.Render("asking the agent for the diff of " + short(commit) + "...")}
	}
	out := []string{th.bold.Render("commit " + c.t(r.Commit))}
	for _, l := range strings.Split(strings.TrimRight(r.Message, "\n"), "\n") {
		out = append(out, "    "+c.t(l))
	}
	out = append(out, "")
	for _, f := range r.Files {
		s := "  " + c.t(dash(f.From))
		if f.To != f.From {
			s += " " + th.arrow + " " + c.t(dash(f.To))
		}
		if f.Node != "" {
			s += "  (" + c.t(f.Node) + "'s own, replaces " + c.t(f.AppliesTo) + ")"
		}
		out = append(out, s)
	}
	out = append(out, "")
	for _, l := range strings.Split(strings.TrimRight(r.Patch, "\n"), "\n") {
		l = c.t(l)
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			out = append(out, th.bold.Render(l))
		case strings.HasPrefix(l, "+"):
			out = append(out, th.added.Render(l))
		case strings.HasPrefix(l, "-"):
			out = append(out, th.removed.Render(l))
		case strings.HasPrefix(l, "@@"):
			out = append(out, th.hunk.Render(l))
		default:
			out = append(out, l)
		}
	}
	return out
}
