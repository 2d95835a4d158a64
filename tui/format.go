package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/sentryha/sentry/internal/agent/cfgsync"
)

// page is one screen's lines: a list (sel is the line of the selected
// item, items how many there are) or a text that scrolls (sel -1).
type page struct {
	lines  []string
	sel    int
	items  int
	detail []string // the selected item opened, when it is
}

// rctx is what a screen is drawn from.
type rctx struct {
	d    *data
	th   theme
	w    int
	now  time.Time
	v    view
	conn conn
}

// add appends lines.
func (p *page) add(lines ...string) { p.lines = append(p.lines, lines...) }

// t is text from the agent, made safe to draw.
func (c *rctx) t(s string) string { return c.th.clean(s) }

// section is a heading.
func (c *rctx) section(s string) string { return c.th.head.Render(s) }

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func plural(n int, what string) string { return fmt.Sprintf("%d %s", n, what) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago is how long before now t was, to the second: "now", "12s ago".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second && d > -time.Second:
		return "now"
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// stamp is t in UTC, to the second, and how long ago.
func stamp(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " (" + ago(now, t) + ")"
}

// ms is a duration in milliseconds, short.
func ms(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%dms", n)
	}
	return fmt.Sprintf("%.1fs", float64(n)/1000)
}

// cell is s cut or padded to w columns.
func cell(s string, w int) string {
	if w <= 0 {
		return ""
	}
	n := ansi.StringWidth(s)
	if n > w {
		return ansi.Truncate(s, w, "")
	}
	return s + strings.Repeat(" ", w-n)
}

// wrap breaks s into lines of at most w columns, the later ones indented;
// the first keeps the spaces s begins with.
func wrap(s string, w int, indent string) []string {
	lead := s[:len(s)-len(strings.TrimLeft(s, " "))]
	words := strings.Fields(s)
	var out []string
	line := ""
	for _, word := range words {
		switch {
		case line == "":
			line = lead + word
		case ansi.StringWidth(line)+1+ansi.StringWidth(word) <= w:
			line += " " + word
		default:
			out = append(out, line)
			line = indent + word
		}
	}
	if line != "" || len(out) == 0 {
		out = append(out, line)
	}
	return out
}

// matches says whether the filter f (words, all of which must appear,
// ignoring case) matches the texts.
func matches(f string, texts ...string) bool {
	if f == "" {
		return true
	}
	all := strings.ToLower(strings.Join(texts, " "))
	for _, w := range strings.Fields(strings.ToLower(f)) {
		if !strings.Contains(all, w) {
			return false
		}
	}
	return true
}

func filterList(list []string, f string) []string {
	var out []string
	for _, s := range list {
		if matches(f, s) {
			out = append(out, s)
		}
	}
	return out
}

func filterLog(log []cfgsync.LogEntry, f string) []cfgsync.LogEntry {
	var out []cfgsync.LogEntry
	for _, e := range log {
		if matches(f, e.Commit, e.Author, e.Subject) {
			out = append(out, e)
		}
	}
	return out
}
