package tui

import (
	"fmt"
	"strings"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/readiness"
)

// statusLine says who is shown, and whether the agent and the peer answer.
func statusLine(c *rctx) string {
	th := c.th
	var parts []string
	if st := c.d.state; st != nil {
		if st.ClusterName != "" {
			parts = append(parts, th.bold.Render(c.t(st.ClusterName)))
		}
		if self := c.d.self(); self != nil {
			parts = append(parts, "on "+c.t(self.Name)+" ("+dash(self.Role)+")")
		}
	}
	switch {
	case c.conn.down:
		s := "AGENT DOWN since " + c.conn.since.UTC().Format("15:04:05")
		if c.conn.wait > 0 {
			s += fmt.Sprintf(", retrying in %s", c.conn.wait)
		}
		parts = append(parts, th.bad.Render(s))
	case len(c.d.at) == 0:
		parts = append(parts, th.warn.Render("asking the agent..."))
	default:
		parts = append(parts, th.ok.Render("agent up"))
	}
	if l := c.linkOf(); l != nil {
		if l.Reachable {
			parts = append(parts, "peer "+c.t(l.Peer)+" "+th.ok.Render("reachable"))
		} else {
			s := "PEER " + c.t(l.Peer) + " UNREACHABLE"
			if l.LastContact != nil {
				s += ", last contact " + ago(c.now, *l.LastContact)
			}
			parts = append(parts, th.bad.Render(s))
		}
	}
	parts = append(parts, c.now.UTC().Format("15:04:05 UTC"))
	return strings.Join(parts, th.sep)
}

func (c *rctx) linkOf() *api.Link {
	if c.d.state == nil {
		return nil
	}
	return c.d.state.Link
}

// overview: the verdict and its reasons first, then both nodes.
func overview(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	if c.conn.down {
		p.add(wrap(th.bad.Render("The agent does not answer:")+" "+c.t(c.conn.err), c.w, "  ")...)
		p.add("What is shown is what it said last; the UI reconnects by itself.", "")
	}
	switch r := d.ready; {
	case r != nil:
		p.add("VERDICT  " + th.verdict(string(r.Verdict)) + "   judged " + stamp(c.now, r.At))
		p.add(reasons(c, r)...)
		if pv := r.Peer; pv != nil {
			s := fmt.Sprintf("%s says %s, judged %s", c.t(pv.Node), th.verdict(string(pv.Verdict)), ago(c.now, pv.At))
			if len(pv.Reasons) > 0 {
				s += ": " + c.t(strings.Join(pv.Reasons, "; "))
			}
			p.add(wrap(s, c.w, "    ")...)
		}
	case d.errs[keyReady] != "":
		p.add("VERDICT  " + th.warn.Render("not known: "+c.t(d.errs[keyReady])))
	default:
		p.add("VERDICT  " + th.dim.Render("not known yet"))
	}
	p.add("")
	if d.state == nil {
		if e := d.errs[keyStatus]; e != "" {
			p.add(th.bad.Render("status: " + c.t(e)))
		} else {
			p.add(th.dim.Render("The nodes are not known yet."))
		}
		return p
	}
	p.add(nodeTable(c, d.state)...)
	p.add(notes(c, d.state)...)
	return p
}

// reasons are the findings that block, then the warnings that fail.
func reasons(c *rctx, r *readiness.Result) []string {
	th := c.th
	var out []string
	for _, f := range r.Findings {
		mark := ""
		switch {
		case f.Blocks:
			mark = "  " + th.bad.Render("x") + " "
		case f.Severity == readiness.Warn && f.State == readiness.Fail:
			mark = "  " + th.warn.Render("!") + " "
		default:
			continue
		}
		out = append(out, wrap(mark+c.t(f.Check)+": "+c.t(f.Reason), c.w, "      ")...)
		if f.Fix != "" {
			out = append(out, th.dim.Render("      "+c.t(f.Fix)))
		}
	}
	if len(out) == 0 && r.Verdict == readiness.Ready {
		out = append(out, th.ok.Render("  every blocking check passes"))
	}
	return out
}

// nodeTable is the nodes side by side.
func nodeTable(c *rctx, st *api.State) []string {
	th := c.th
	label := 16
	col := max((c.w-label)/max(len(st.Nodes), 1), 12)
	row := func(name string, f func(n api.Node) string) string {
		s := cell(name, label)
		for _, n := range st.Nodes {
			s += cell(f(n), col-1) + " "
		}
		return strings.TrimRight(s, " ")
	}
	var parity map[string]api.Inventory
	if st.Parity != nil {
		parity = map[string]api.Inventory{st.Parity.Self.Node: st.Parity.Self, st.Parity.Peer.Node: st.Parity.Peer}
	}
	out := []string{
		th.bold.Render(row("", func(n api.Node) string {
			if n.Self {
				return c.t(n.Name) + " (this node)"
			}
			return c.t(n.Name)
		})),
		row("role", func(n api.Node) string { return dash(n.Role) }),
		row("machine", func(n api.Node) string { return c.t(dash(n.Hardware)) }),
		row("disk set", func(n api.Node) string { return c.t(dash(short(n.DiskSet))) }),
		row("generation", func(n api.Node) string { return fmt.Sprint(n.Generation) }),
		row("agent", func(n api.Node) string { return c.t(dash(n.AgentVersion)) }),
		row("last contact", func(n api.Node) string {
			switch {
			case n.Self:
				return "now"
			case n.LastContact == nil:
				return "never"
			case !n.Reachable:
				return th.bad.Render(ago(c.now, *n.LastContact) + ", unreachable")
			}
			return ago(c.now, *n.LastContact)
		}),
		row("config head", func(n api.Node) string { return dash(short(n.ConfigHead)) }),
		row("config applied", func(n api.Node) string {
			if n.ConfigFailed != "" {
				return th.bad.Render(short(n.ConfigFailed) + " FAILED")
			}
			if n.Role == "primary" && n.ConfigApplied == "" {
				return "(the primary)"
			}
			return dash(short(n.ConfigApplied))
		}),
		row("verifier", func(n api.Node) string {
			if len(n.VerifyRed) > 0 {
				return th.bad.Render(c.t(n.Verify + ", red: " + strings.Join(n.VerifyRed, " ")))
			}
			return c.t(dash(n.Verify))
		}),
		row("config drift", func(n api.Node) string {
			if n.ConfigDrift > 0 {
				return th.warn.Render(plural(n.ConfigDrift, "path(s) edited"))
			}
			return "none"
		}),
		row("packages", func(n api.Node) string {
			inv, ok := parity[n.Name]
			switch {
			case !ok:
				return "-"
			case inv.Error != "":
				return th.warn.Render(fmt.Sprintf("%d, %s", inv.Packages, c.t(inv.Error)))
			}
			return fmt.Sprintf("%d, kernel %s", inv.Packages, c.t(dash(inv.Kernel)))
		}),
		row("boot", func(n api.Node) string {
			if n.SafeMode != "" {
				return th.bad.Render("SAFE MODE")
			}
			return c.t(dash(n.Boot))
		}),
	}
	return out
}

// notes are what needs saying under the table: errors, safe mode, the
// failed apply, the hint.
func notes(c *rctx, st *api.State) []string {
	th := c.th
	var out []string
	say := func(style func(...string) string, s string) {
		out = append(out, wrap(style(c.t(s)), c.w, "  ")...)
	}
	for _, n := range st.Nodes {
		if n.Error != "" {
			say(th.bad.Render, n.Name+": "+n.Error)
		}
		if n.SafeMode != "" {
			say(th.bad.Render, n.Name+": SAFE MODE: "+n.SafeMode)
		} else if n.Failover {
			say(th.warn.Render, n.Name+": FAILOVER: the "+n.Role+" disk set runs on the other machine")
		}
		if n.ConfigFailed != "" {
			say(th.bad.Render, fmt.Sprintf("%s: configuration %s failed to apply: %s", n.Name, short(n.ConfigFailed), dash(n.ConfigError)))
		}
		if len(n.BoundaryPending) > 0 {
			say(th.warn.Render, n.Name+": holds back until approved (sentry modules approve): "+strings.Join(n.BoundaryPending, ", "))
		}
	}
	if st.Hint != "" {
		say(th.warn.Render, st.Hint)
	}
	if len(out) > 0 {
		out = append([]string{""}, out...)
	}
	return out
}
