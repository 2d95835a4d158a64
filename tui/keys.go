package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key of the UI; the help bar shows those of the screen.
type keyMap struct {
	Quit, Help, Next, Prev, Jump, Up, Down, PageUp, PageDown, Top, Bottom key.Binding
	Enter, Back, Filter, Refresh, RunProbe, Rollback, Plan, Follow        key.Binding
	Use, ModRollback, Build, Apply                                        key.Binding
	screen                                                                screen
	detail                                                                bool
}

func newKeyMap() keyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Quit:     b("q", "quit", "q", "ctrl+c"),
		Help:     b("?", "more keys", "?"),
		Next:     b("tab", "next screen", "tab"),
		Prev:     b("shift+tab", "previous screen", "shift+tab"),
		Jump:     b("1-8", "go to screen", "1", "2", "3", "4", "5", "6", "7", "8"),
		Up:       b("up/k", "up", "up", "k"),
		Down:     b("down/j", "down", "down", "j"),
		PageUp:   b("pgup", "page up", "pgup", "b"),
		PageDown: b("pgdn", "page down", "pgdown", "space"),
		Top:      b("home/g", "first", "home", "g"),
		Bottom:   b("end/G", "last", "end", "G"),
		Enter:    b("enter", "open", "enter"),
		Back:     b("esc", "back", "esc"),
		Filter:   b("/", "filter", "/"),
		Refresh:  b("ctrl+r", "refetch", "ctrl+r"),
		RunProbe: b("r", "run probe now", "r"),
		Rollback: b("R", "roll back to this commit", "R"),
		Plan:     b("p", "make a swap plan", "p"),
		Follow:   b("f", "follow on/off", "f"),
		// The Modules screen's and the Reports screen's.
		Use:         b("u", "use this version", "u"),
		ModRollback: b("R", "roll back the module", "R"),
		Build:       b("c", "build this week so far", "c"),
		// The Packages screen's.
		Apply: b("A", "apply this node's part of the plan", "A"),
	}
}

// ShortHelp is the help bar: the screen's own keys first.
func (k keyMap) ShortHelp() []key.Binding {
	if k.detail {
		return []key.Binding{k.Back, k.Up, k.Down, k.Quit, k.Help}
	}
	var own []key.Binding
	switch k.screen {
	case scrServices:
		own = []key.Binding{k.Enter, k.RunProbe, k.Filter}
	case scrSync:
		own = []key.Binding{k.Enter, k.Rollback, k.Filter}
	case scrFailover:
		own = []key.Binding{k.Plan}
	case scrEvents:
		own = []key.Binding{k.Enter, k.Filter, k.Follow}
	case scrPackages:
		own = []key.Binding{k.Apply, k.Filter}
	case scrModules:
		own = []key.Binding{k.Use, k.ModRollback, k.Enter, k.Filter}
	case scrReports:
		own = []key.Binding{k.Enter, k.Build, k.Filter}
	}
	return append(own, k.Next, k.Jump, k.Quit, k.Help)
}

// FullHelp is every key, by column: those of every screen, then the
// screen's own.
func (k keyMap) FullHelp() [][]key.Binding {
	cols := [][]key.Binding{
		{k.Next, k.Prev, k.Jump, k.Quit, k.Help},
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
		{k.Enter, k.Back, k.Filter, k.Refresh},
	}
	own := map[screen][]key.Binding{
		scrServices: {k.RunProbe}, scrSync: {k.Rollback}, scrFailover: {k.Plan}, scrEvents: {k.Follow},
		scrModules: {k.Use, k.ModRollback}, scrReports: {k.Build}, scrPackages: {k.Apply},
	}[k.screen]
	if len(own) > 0 {
		cols = append(cols, own)
	}
	return cols
}
