package tui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/sentryha/sentry/internal/agent/reports"
)

// The report a key opens on the Reports screen: "self/WEEK" (built now
// from this node's store, as `sentry report --week` does) or "peer/WEEK"
// (the peer's kept one, as `sentry report --from-peer`); reportNow is the
// week so far.
const reportNow = "self/current"

// reportRef is the report of row r of the list: this node's or the
// peer's.
func reportRef(l *reports.List, r reports.Kept) string {
	if l.Peer != "" && r.Node == l.Peer {
		return "peer/" + r.Week
	}
	return "self/" + r.Week
}

// filterReports is the list's rows that match the filter.
func filterReports(l *reports.List, f string) []reports.Kept {
	if l == nil {
		return nil
	}
	var out []reports.Kept
	for _, r := range l.Reports {
		if matches(f, r.Week, r.Node, r.Headline) {
			out = append(out, r)
		}
	}
	return out
}

// reportsScreen is the kept weekly reports of both nodes, newest first;
// the one opened is shown whole.
func reportsScreen(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	p.add(c.section("Weekly reports") + th.dim.Render("  enter: open"+th.sep+"c: build this week so far"+th.sep+"/ filters"))
	if e := d.errs[keyReports]; e != "" {
		p.add(wrap(th.bad.Render("reports: ")+c.t(e), c.w, "  ")...)
	}
	l := d.reports
	if l == nil {
		if d.errs[keyReports] == "" {
			p.add(th.dim.Render("  not known yet"))
		}
		p.detail = reportView(c, c.v.open)
		return p
	}
	if l.PeerError != "" {
		p.add(wrap(th.warn.Render("peer: ")+c.t(l.PeerError)+" (only this node's kept reports are listed)", c.w, "  ")...)
	}
	if l.PeerMore > 0 {
		p.add(th.dim.Render("  " + c.t(l.Peer) + " keeps " + plural(l.PeerMore, "older report(s), not listed")))
	}
	for _, s := range l.Skipped {
		p.add(wrap(th.warn.Render("skipped: ")+c.t(s), c.w, "  ")...)
	}
	rows := filterReports(l, c.v.filter)
	if len(rows) == 0 {
		switch {
		case c.v.filter != "":
			p.add(th.dim.Render("  no report matches the filter"))
		default:
			p.add(wrap("  no report kept yet: sentry-report.timer keeps one each week (sentry report --mail); c builds this week's so far", c.w, "    ")...)
		}
		p.detail = reportView(c, c.v.open)
		return p
	}
	nw := 4
	for _, r := range rows {
		nw = max(nw, ansi.StringWidth(c.t(r.Node)))
	}
	nw = min(nw, 16)
	p.add(th.dim.Render("  " + cell("WEEK", 10) + cell("NODE", nw+2) + cell("MADE (UTC)", 18) + "HEADLINE"))
	p.items = len(rows)
	cur := min(c.v.cursor, len(rows)-1)
	for i, r := range rows {
		mark, week := "  ", cell(c.t(r.Week), 8)
		if i == cur {
			p.sel = len(p.lines)
			mark, week = "> ", th.sel.Render(week)
		}
		line := mark + week + "  " + cell(c.t(r.Node), nw) + "  " + r.Made.UTC().Format("2006-01-02 15:04") + "  " + headline(th, c.t(r.Headline))
		if r.Partial {
			line += th.warn.Render(" (partial week)")
		}
		p.add(line)
	}
	p.detail = reportView(c, c.v.open)
	return p
}

// headline is a report's headline, its verdict coloured.
func headline(th theme, h string) string {
	for _, v := range []string{"NOT READY", "READY", "UNKNOWN"} {
		if rest, ok := strings.CutPrefix(h, v); ok {
			return th.verdict(v) + rest
		}
	}
	return h
}

// reportView is the report ref opened: its text as `sentry report`
// prints it (laid out for 80 columns, ASCII), the headings bold.
func reportView(c *rctx, ref string) []string {
	th, d := c.th, c.d
	if ref == "" {
		return []string{th.dim.Render("no report opened")}
	}
	from, week, _ := strings.Cut(ref, "/")
	what := "the report of " + week
	if ref == reportNow {
		what = "the report of this week so far"
	}
	if e := d.errs[keyReport+ref]; e != "" {
		return wrap(th.bad.Render(what+": ")+c.t(e), c.w, "  ")
	}
	t := d.texts[ref]
	if t == nil {
		verb := "asking the agent for "
		if from == "self" {
			verb = "building "
		}
		return []string{th.dim.Render(verb + what + "...")}
	}
	title := "report " + c.t(t.Week)
	switch {
	case from == "peer":
		title += ", kept by " + c.t(dash(t.Node)) + " (fetched over the peer link)"
	case ref == reportNow:
		title += ", the week so far, built now from this node's store"
	default:
		title += ", built now from this node's store"
	}
	out := []string{th.bold.Render(title), ""}
	lines := strings.Split(strings.TrimRight(t.Body, "\n"), "\n")
	for i, l := range lines {
		l = c.t(strings.TrimRight(l, " \r"))
		// A heading is a line underlined with = or -, as long as it.
		if i+1 < len(lines) && l != "" && isRule(lines[i+1]) && len(strings.TrimSpace(lines[i+1])) == len(l) {
			out = append(out, th.head.Render(l))
			continue
		}
		if isRule(l) && i > 0 && len(l) == len(strings.TrimRight(lines[i-1], " ")) {
			out = append(out, th.dim.Render(l))
			continue
		}
		if ansi.StringWidth(l) > c.w {
			// Narrower than the report's 80 columns: wrapped, not cut.
			out = append(out, wrap(l, c.w, "    ")...)
			continue
		}
		out = append(out, l)
	}
	return out
}

// isRule says whether l is a heading's underline: = or - only.
func isRule(l string) bool {
	l = strings.TrimRight(l, " ")
	return l != "" && (strings.Trim(l, "=") == "" || strings.Trim(l, "-") == "")
}
