package tui

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// latency is what a result measured as its latency, else how long it took.
func latency(r *store.StoredResult) int64 {
	if v, ok := r.Values["latency_ms"]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return int64(f)
		}
	}
	return r.DurationMS
}

// sparkline is the last 24 hours of s (newest first) in n columns: each
// the highest latency of its runs, "x" where one failed, " " where none ran.
func sparkline(th theme, s series, now time.Time, n int) string {
	if n <= 0 {
		return ""
	}
	span := int64(24 * time.Hour / time.Duration(n))
	day := int64(24 * time.Hour)
	top := make([]int64, n)
	ran := make([]bool, n)
	failed := make([]bool, n)
	var peak int64
	t := now.UnixNano()
	for i, start := range s.start {
		age := t - start
		if age >= day {
			break // newest first: the rest is older
		}
		if age < 0 {
			continue
		}
		b := n - 1 - int(age/span)
		ran[b] = true
		if !s.ok[i] {
			failed[b] = true
		}
		if l := s.lat[i]; l > top[b] {
			top[b] = l
			peak = max(peak, l)
		}
	}
	var out, run strings.Builder
	flush := func() {
		out.WriteString(run.String())
		run.Reset()
	}
	levels := int64(len(th.spark))
	for b := range n {
		switch {
		case failed[b]:
			flush()
			out.WriteString(th.bad.Render("x"))
		case !ran[b]:
			run.WriteByte(' ')
		default:
			lvl := int64(0)
			if peak > 0 {
				lvl = top[b] * (levels - 1) / peak
			}
			run.WriteString(th.spark[lvl])
		}
	}
	flush()
	return out.String()
}

// services is the matrix of services by node.
func services(c *rctx) page {
	th, d := c.th, c.d
	p := page{sel: -1}
	nodes := d.nodes()
	probes := filterList(d.probes(), c.v.filter)
	if len(nodes) == 0 {
		p.add(th.dim.Render("No node is known yet."))
		return p
	}
	nameW := 10
	for _, pr := range probes {
		nameW = max(nameW, min(len(pr)+3, 24))
	}
	col := max((c.w-nameW)/len(nodes), 16)
	sparkW := col - 15
	head := cell("SERVICE", nameW)
	for _, n := range nodes {
		role := ""
		if st := d.state; st != nil {
			for _, sn := range st.Nodes {
				if sn.Name == n && sn.Role != "" {
					role = " (" + sn.Role + ")"
				}
			}
		}
		head += cell(c.t(n)+role, col)
	}
	p.add(th.bold.Render(strings.TrimRight(head, " ")))
	sub := cell("", nameW)
	for range nodes {
		sub += cell("last  latency  last 24h", col)
	}
	p.add(th.dim.Render(strings.TrimRight(sub, " ")))
	for _, n := range nodes {
		if e := d.errs[keyLatest+n]; e != "" {
			p.add(th.bad.Render(c.t(n + ": " + e)))
		}
	}
	if len(probes) == 0 {
		if c.v.filter != "" {
			p.add(th.dim.Render("No service matches the filter."))
		} else {
			p.add(th.dim.Render("No probe has run yet."))
		}
		return p
	}
	p.items = len(probes)
	cur := min(c.v.cursor, len(probes)-1)
	for i, pr := range probes {
		name := "  " + c.t(pr)
		if i == cur {
			p.sel = len(p.lines)
			name = th.sel.Render("> " + c.t(pr))
		}
		line := cell(name, nameW)
		for _, n := range nodes {
			r := d.last(n, pr)
			if r == nil {
				line += cell(th.dim.Render("-"), col)
				continue
			}
			mark := th.mark(r.OK)
			line += cell(mark, 5) + fmt.Sprintf("%7s  ", ms(latency(r))) + cell(d.spark(th, histKey(n, pr), c.now, sparkW), col-14)
		}
		p.add(strings.TrimRight(line, " "))
	}
	p.detail = lastRun(c, probes[cur], nodes)
	return p
}

// lastRun is the last run of probe on each node: phases, values, detail.
func lastRun(c *rctx, probe string, nodes []string) []string {
	th, d := c.th, c.d
	out := []string{th.bold.Render("The last run of " + c.t(probe)), ""}
	for _, n := range nodes {
		r := d.last(n, probe)
		if r == nil {
			out = append(out, c.t(n)+": "+th.dim.Render("no result"), "")
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s  at %s, took %s", c.t(n), th.mark(r.OK), stamp(c.now, r.Start), ms(r.DurationMS)))
		if r.Message != "" {
			out = append(out, wrap("  message: "+c.t(r.Message), c.w, "    ")...)
		}
		if r.FailedPhase != "" {
			out = append(out, "  failed phase: "+th.bad.Render(c.t(r.FailedPhase)))
		}
		if len(r.Phases) > 0 {
			out = append(out, "  phases:")
			for _, ph := range r.Phases {
				line := "    " + cell(c.t(ph.Name), 20) + fmt.Sprintf("%8s  ", ms(ph.MS)) + th.mark(ph.OK)
				if ph.Error != "" {
					line += "  " + c.t(ph.Error)
				}
				out = append(out, line)
			}
		}
		if len(r.Values) > 0 {
			out = append(out, "  values:")
			keys := make([]string, 0, len(r.Values))
			for k := range r.Values {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, "    "+cell(c.t(k), 20)+c.t(r.Values[k]))
			}
		}
		if h := d.series[histKey(n, probe)]; len(h.start) > 0 {
			bad := 0
			for _, ok := range h.ok {
				if !ok {
					bad++
				}
			}
			out = append(out, fmt.Sprintf("  last 24h: %d runs, %d failed", len(h.start), bad))
		}
		out = append(out, "")
	}
	return out
}

// sparkCache is a sparkline drawn, and what it was drawn from.
type sparkCache struct {
	from string
	line string
}

// spark is the sparkline of the history key, drawn again only when the
// history, the width or the time column changed.
func (d *data) spark(th theme, key string, now time.Time, n int) string {
	s := d.series[key]
	from := fmt.Sprint(n, len(s.start), now.Truncate(24*time.Hour/time.Duration(max(n, 1))).Unix())
	if len(s.start) > 0 {
		from += fmt.Sprint(s.start[0], s.start[len(s.start)-1])
	}
	if c, ok := d.sparks[key]; ok && c.from == from {
		return c.line
	}
	line := sparkline(th, s, now, n)
	d.sparks[key] = sparkCache{from: from, line: line}
	return line
}
