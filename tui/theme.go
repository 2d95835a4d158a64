package tui

import (
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
)

// Option sets how the UI looks and what clock it reads.
type Option func(*options)

type options struct {
	now    func() time.Time
	ascii  bool
	color  bool
	screen screen
}

// WithClock makes the UI read the time from now (tests: a fixed clock).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithASCII draws with ASCII only (the Linux console: TERM=linux).
func WithASCII(ascii bool) Option { return func(o *options) { o.ascii = ascii } }

// WithColor draws in colour, or not (NO_COLOR).
func WithColor(color bool) Option { return func(o *options) { o.color = color } }

// EnvOptions are the options the environment asks for: ASCII on the Linux
// console (TERM=linux) or a terminal that says it has no Unicode, no
// colour with NO_COLOR set (https://no-color.org) or TERM=dumb.
func EnvOptions(getenv func(string) string) []Option {
	term := getenv("TERM")
	ascii := term == "linux" || term == "dumb" || term == "vt100" || term == "vt220"
	color := getenv("NO_COLOR") == "" && term != "dumb"
	return []Option{WithASCII(ascii), WithColor(color)}
}

// theme is the styles and glyphs the UI draws with.
type theme struct {
	ascii                               bool
	ok, bad, warn, dim, bold, head, sel lipgloss.Style
	tabOn, tabOff, added, removed, hunk lipgloss.Style
	spark                               []string
	sep, bullet, ellipsis, arrow        string
}

// newTheme is the theme of o. The colours are the terminal's own (ANSI
// 1, 2, 3, 6), which read on a dark background and a light one alike: no
// colour depends on the background, so nothing asks the terminal which
// it has. Without colour (o.color false) the frame is drawn without any
// style (Model.draw).
func newTheme(o options) theme {
	s := lipgloss.NewStyle
	t := theme{
		ascii:   o.ascii,
		ok:      s().Foreground(lipgloss.Color("2")),
		bad:     s().Foreground(lipgloss.Color("1")).Bold(true),
		warn:    s().Foreground(lipgloss.Color("3")),
		dim:     s().Faint(true),
		bold:    s().Bold(true),
		head:    s().Bold(true).Underline(true),
		sel:     s().Reverse(true),
		tabOn:   s().Reverse(true).Bold(true),
		tabOff:  s(),
		added:   s().Foreground(lipgloss.Color("2")),
		removed: s().Foreground(lipgloss.Color("1")),
		hunk:    s().Foreground(lipgloss.Color("6")),
	}
	if o.ascii {
		t.spark = []string{"_", ".", "-", "=", "+", "*", "#"}
		t.sep, t.bullet, t.ellipsis, t.arrow = " | ", "-", "...", "->"
	} else {
		t.spark = []string{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"}
		t.sep, t.bullet, t.ellipsis, t.arrow = " · ", "•", "…", "→"
	}
	return t
}

// help is the help bar in this theme.
func (t theme) help() help.Model {
	h := help.Model{ShortSeparator: t.sep, FullSeparator: "   ", Ellipsis: t.ellipsis}
	h.Styles = help.Styles{
		Ellipsis: t.dim, ShortKey: t.bold, ShortDesc: t.tabOff, ShortSeparator: t.dim,
		FullKey: t.bold, FullDesc: t.tabOff, FullSeparator: t.dim,
	}
	return h
}

// verdict is a verdict, coloured.
func (t theme) verdict(v string) string {
	switch v {
	case "READY":
		return t.ok.Bold(true).Render(v)
	case "NOT READY":
		return t.bad.Render(v)
	}
	return t.warn.Bold(true).Render(v)
}

// mark is ok or FAIL, coloured.
func (t theme) mark(ok bool) string {
	if ok {
		return t.ok.Render("ok")
	}
	return t.bad.Render("FAIL")
}

// clean makes text from the agent safe to draw: one line, no control
// characters, and in ASCII mode no other character either.
func (t theme) clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		case t.ascii && r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
