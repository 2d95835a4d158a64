package report

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// The renderers share one outline of the report: headings, paragraphs,
// lists, tables and charts, in the order of issue 16, so that text,
// Markdown and HTML say the same.

type block interface{ isBlock() }

type heading struct{ text string }

// para is a paragraph; code, when set, is a command shown after the text.
type para struct {
	text   string
	code   string
	strong bool
}

type list struct {
	items   []para
	ordered bool
}

type table struct {
	head  []string
	rows  [][]string
	right []bool // columns aligned right
}

// chartRef places a chart (see charts).
type chartRef struct{ name string }

func (heading) isBlock()  {}
func (para) isBlock()     {}
func (list) isBlock()     {}
func (table) isBlock()    {}
func (chartRef) isBlock() {}

const timeLayout = "Mon 2006-01-02 15:04 MST"

func ft(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

// fts is a time in a table, whose heading says UTC.
func fts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("Mon 2 Jan 15:04")
}

// human prints a duration for a person: 45s, 12m, 3h 20m, 2d 4h.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute && int(d.Seconds())%60 != 0:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days, h := int(d.Hours())/24, int(d.Hours())%24
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

// pct prints a share (0..1) as a percentage with one decimal, rounded
// down so that 100 % means all of it.
func pct(f float64) string {
	v := math.Floor(f*1000) / 10
	return fmt.Sprintf("%.1f %%", v)
}

func ms(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0f s", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

// Title is the report's title line.
func (r *Report) Title() string {
	last := r.To.AddDate(0, 0, -1)
	return fmt.Sprintf("Sentry %s: weekly report %s (%s to %s)", r.Cluster, r.Week, r.From.Format("Mon 2 Jan"), last.Format("Mon 2 Jan 2006"))
}

// Headline is the verdict in one line, as the mail subject carries it:
// "READY (99.8 % of week 49)": the verdict now and the share of the
// week's known time spent READY.
func (r *Report) Headline() string {
	_, wk, _ := strings.Cut(r.Week, "-W")
	wk = strings.TrimPrefix(wk, "0")
	so := ""
	if r.Partial {
		so = " so far"
	}
	v := r.Verdict
	if !v.Known {
		now := NoData
		if v.Now != "" {
			now = v.Now
		}
		return fmt.Sprintf("%s (week %s%s: %s)", now, wk, so, NoData)
	}
	now := v.Now
	if now == "" {
		now = "UNKNOWN"
	}
	return fmt.Sprintf("%s (%s of week %s%s)", now, pct(v.ReadyShare), wk, so)
}

// outline is the report as blocks.
func (r *Report) outline() []block {
	var out []block
	add := func(b ...block) { out = append(out, b...) }
	p := func(format string, a ...any) para { return para{text: fmt.Sprintf(format, a...)} }

	made := fmt.Sprintf("Made %s", ft(r.Made))
	if r.Node != "" {
		made += " from the verdicts of " + r.Node
	}
	if r.Partial {
		made += fmt.Sprintf("; the week is not over: figures so far (until %s)", ft(r.Until))
	}
	add(p("%s.", made))
	if r.NoHistory {
		add(para{text: "The store holds no history yet: " + NoData + " for every section.", strong: true})
	}

	// 1. The verdict.
	add(heading{"Verdict"})
	v := r.Verdict
	if v.Now != "" {
		now := para{text: fmt.Sprintf("Now: %s (judged %s)", v.Now, ft(v.NowAt)), strong: true}
		if len(v.NowReasons) > 0 {
			now.text += ": " + strings.Join(v.NowReasons, "; ")
		}
		add(now)
	} else {
		add(para{text: "Now: " + NoData, strong: true})
	}
	if !v.Known {
		add(p("Over the week: %s (no verdict recorded in it).", NoData))
	} else {
		add(p("Over the week: READY %s of the time with a known verdict (%s of %s known); %d spell(s) not READY.",
			pct(v.ReadyShare), human(time.Duration(v.CoveredS)*time.Second), human(time.Duration(v.SpanS)*time.Second), len(v.Spells)))
		add(chartRef{"verdict"})
		if len(v.Spells) > 0 {
			t := table{head: []string{"From (UTC)", "To", "Duration", "Verdict", "Cause"}, right: []bool{false, false, true, false, false}}
			for _, s := range v.Spells {
				to := fts(s.To)
				if s.Ongoing {
					to = "still at " + fts(s.To)
				}
				t.rows = append(t.rows, []string{fts(s.From), to, human(time.Duration(s.DurationS) * time.Second), s.Verdict, strings.Join(s.Causes, "; then: ")})
			}
			add(t)
		}
	}

	// 2. Recommended actions.
	add(heading{"Recommended actions"})
	if len(r.Actions) == 0 {
		if r.NoHistory {
			add(p("%s.", NoData))
		} else {
			add(p("Nothing to do."))
		}
	} else {
		l := list{ordered: true}
		for _, a := range r.Actions {
			it := para{text: a.What, code: a.Command}
			if a.Why != "" {
				it.text += ": " + a.Why
			}
			l.items = append(l.items, it)
		}
		add(l)
	}

	// 3. Services.
	add(heading{"Services"})
	if len(r.Services.Rows) == 0 {
		add(p("%s: no probe ran this week.", NoData))
	} else {
		add(chartRef{"services"})
		t := table{head: []string{"Service", "Node", "Rounds", "Passed", "p50", "p95", "Max", "Failed phases"},
			right: []bool{false, false, true, true, true, true, true, false}}
		for _, row := range r.Services.Rows {
			if row.Rounds == 0 {
				why := row.NoData
				if why == "" {
					why = "no rounds"
				}
				t.rows = append(t.rows, []string{row.Service, row.Node, "0", "-", "-", "-", "-", NoData + ": " + why})
				continue
			}
			var ph []string
			for _, c := range row.FailedPhases {
				ph = append(ph, fmt.Sprintf("%s %d", c.Phase, c.Failures))
			}
			phases := strings.Join(ph, ", ")
			if phases == "" {
				phases = "-"
			}
			t.rows = append(t.rows, []string{row.Service, row.Node, fmt.Sprint(row.Rounds), pct(row.PassRate), ms(row.P50MS), ms(row.P95MS), ms(float64(row.MaxMS)), phases})
		}
		add(t)
	}

	// 4. Configuration.
	add(heading{"Configuration"})
	c := r.Config
	cfgList := func(title string, items []ConfigItem, withPaths bool) {
		if len(items) == 0 {
			add(p("%s: none.", title))
			return
		}
		add(p("%s: %d.", title, len(items)))
		l := list{}
		for _, it := range items {
			s := ft(it.At) + " " + it.Node + ": "
			if withPaths && it.Commit != "" {
				s += it.Commit + ": " + strings.Join(it.Paths, " ")
			} else {
				s += it.Text
			}
			l.items = append(l.items, para{text: s})
		}
		add(l)
	}
	if r.NoHistory {
		add(p("%s.", NoData))
	} else {
		cfgList("Commits", c.Commits, true)
		cfgList("Failed applies", c.FailedApplies, false)
		cfgList("Drift found on the secondary", c.Drift, false)
		if len(c.Refused) > 0 {
			cfgList("Paths left out", c.Refused, false)
		}
	}

	// 5. Packages.
	add(heading{"Packages, kernels and firmware"})
	pk := r.Packages
	if r.NoHistory {
		add(p("%s.", NoData))
	} else {
		evList := func(title string, items []EventItem) {
			if len(items) == 0 {
				add(p("%s: none.", title))
				return
			}
			l := list{}
			for _, it := range items {
				l.items = append(l.items, para{text: ft(it.At) + " " + it.Node + ": " + it.Text})
			}
			add(p("%s: %d.", title, len(items)), l)
		}
		evList("Changed this week", pk.Changes)
		evList("Boot kernels changed", pk.Kernels)
		switch pk.DriftNow {
		case "":
			add(p("Drift now: %s.", NoData))
		default:
			add(p("Drift now: %s (%s).", pk.DriftNow, pk.DriftText))
		}
	}

	// 6, 7. Compatibility and modules; 8. RAID and disks.
	findings := func(title string, s FindingSection) {
		add(heading{title})
		if len(s.Findings) == 0 {
			add(p("%s: %s.", NoData, s.Missing))
			return
		}
		add(p("As judged %s:", ft(s.At)))
		l := list{}
		for _, f := range s.Findings {
			it := para{text: fmt.Sprintf("%s: %s: %s", f.Check, f.State, f.Reason)}
			if len(f.Evidence) > 0 {
				it.text += " [" + strings.Join(f.Evidence, "; ") + "]"
			}
			if f.State != "pass" && f.State != "n/a" {
				it.code = f.Fix
			}
			l.items = append(l.items, it)
		}
		add(l)
	}
	findings("Cross-boot compatibility", r.Compat)
	findings("Module versions", r.Modules)
	findings("RAID and disks", r.Disks.RAID)
	if len(r.Disks.Trend) == 0 {
		add(p("Free space: %s (no disk probe reported free_percent this week).", NoData))
	} else {
		add(chartRef{"disks"})
		t := table{head: []string{"Disk probe", "Node", "First", "Last", "Lowest", "Change"}, right: []bool{false, false, true, true, true, true}}
		for _, d := range r.Disks.Trend {
			t.rows = append(t.rows, []string{d.Service, d.Node, fmt.Sprintf("%.1f %%", d.First), fmt.Sprintf("%.1f %%", d.Last),
				fmt.Sprintf("%.1f %%", d.Min), fmt.Sprintf("%+.1f points", d.Last-d.First)})
		}
		add(p("Free space over the week:"), t)
	}

	// 9. Failovers and drills.
	add(heading{"Failovers and drills"})
	switch {
	case r.NoHistory:
		add(p("%s.", NoData))
	case len(r.Failovers.Items) == 0:
		add(p("None this week."))
	default:
		t := table{head: []string{"When (UTC)", "Kind", "Disks of, machines", "Downtime", "Verdict after"}}
		for _, f := range r.Failovers.Items {
			kind := f.Kind
			if kind == "planned" {
				kind = "planned (drill)"
			}
			if !f.Complete {
				kind += ", not complete"
			}
			t.rows = append(t.rows, []string{fts(f.At), kind, f.Node + ": " + f.From + " -> " + f.To, f.Downtime, or(f.Verdict, "-")})
		}
		add(t)
	}

	// 10. Backups tested.
	add(heading{"Backups tested"})
	b := r.Backups
	if len(b.Runs) == 0 {
		add(p("No restore test this week (%s).", NoData))
	} else {
		l := list{}
		for _, run := range b.Runs {
			it := para{text: fmt.Sprintf("%s %s: %s: %s", ft(run.At), run.Node, run.Repo, run.Outcome())}
			switch run.Outcome() {
			case "good":
				it.text += fmt.Sprintf("; checked data subset %s (%d data pack(s) read), restored %d file(s) (%s), %d compared equal to snapshot %s",
					or(run.Subset, "-"), run.CheckedPacks, run.FilesRestored, bytesText(run.CheckedBytes), run.FilesCompared, or(run.Snapshot, "-"))
			case "skipped":
				it.text += ": " + run.Skipped + " (retried later; not a failure)"
			default:
				it.text += ": " + run.Why()
				it.code = run.Command
			}
			l.items = append(l.items, it)
		}
		add(l)
	}
	if b.Failing {
		add(para{text: "The last restore test failed: a NOT READY reason until the next good run.", strong: true})
	}

	// 11. Week over week.
	add(heading{"Week over week"})
	cmp := r.Compare
	if !cmp.Known {
		add(p("Against %s: %s.", cmp.Previous, NoData))
	} else {
		s := fmt.Sprintf("Against %s: %s.", cmp.Previous, cmp.Trend)
		if len(cmp.Why) > 0 {
			s = fmt.Sprintf("Against %s: %s: %s.", cmp.Previous, cmp.Trend, strings.Join(cmp.Why, "; "))
		}
		add(para{text: s, strong: true})
	}

	if len(r.Notes) > 0 {
		add(heading{"Notes"})
		notes := append([]string(nil), r.Notes...)
		sort.Strings(notes)
		l := list{}
		for _, n := range notes {
			l.items = append(l.items, para{text: n})
		}
		add(l)
	}
	return out
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func bytesText(n int64) string {
	switch {
	case n <= 0:
		return "size not known"
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d bytes", n)
}
