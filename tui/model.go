package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// screen is one of the UI's screens.
type screen int

const (
	scrOverview screen = iota
	scrServices
	scrSync
	scrPackages
	scrFailover
	scrModules
	scrEvents
	scrReports
	nScreens
)

func (s screen) String() string {
	return [...]string{"Overview", "Services", "Sync", "Packages", "Failover", "Modules", "Events", "Reports"}[s]
}

// Screens are the names of the screens, in order (`sentry tui --screen`).
func Screens() []string {
	out := make([]string, nScreens)
	for s := range nScreens {
		out[s] = strings.ToLower(s.String())
	}
	return out
}

// WithScreen opens the UI on screen name (one of Screens); an unknown name
// leaves the Overview.
func WithScreen(name string) Option {
	return func(o *options) {
		for i, s := range Screens() {
			if s == name {
				o.screen = screen(i)
			}
		}
	}
}

// view is what the operator moved to on one screen.
type view struct {
	cursor, off int  // the item selected, the first line shown
	detail      bool // the selected item opened (Enter)
	doff        int  // the first line of the detail shown
	filter      string
	open        string // what the detail shows when not the selected item (Reports: a reportRef)
}

// question is a change that waits for the operator's yes.
type question struct {
	text string
	yes  tea.Cmd
	what string
}

// conn is what the UI knows of the agent.
type conn struct {
	down  bool
	err   string
	wait  time.Duration
	since time.Time // when it went down
}

// Model is the UI, a bubbletea model.
type Model struct {
	f         fetcher
	o         options
	th        theme
	keys      keyMap
	help      help.Model
	d         *data
	w, h      int
	cur       screen
	views     [nScreens]view
	filtering bool
	follow    bool
	conn      conn
	inflight  map[string]bool
	dirty     map[string]bool
	note      string
	noteBad   bool
	ask       *question
}

// New returns the UI of the agent a.
func New(a Agent, opts ...Option) *Model {
	o := options{now: time.Now, color: true}
	for _, opt := range opts {
		opt(&o)
	}
	th := newTheme(o)
	return &Model{
		f: fetcher{a: a, now: o.now, hist: make(chan struct{}, histFetches)}, o: o, th: th, keys: newKeyMap(), help: th.help(), d: newData(),
		w: 80, h: 24, cur: o.screen, follow: true, inflight: map[string]bool{}, dirty: map[string]bool{},
	}
}

// Init fetches what the first screen shows.
func (m *Model) Init() tea.Cmd {
	return m.fetch(append([]string{keyStatus, keyReady, keyEvents}, m.screenKeys(m.cur)...)...)
}

// fetch asks the agent for keys, once at a time each: a key asked again
// while it is on its way is fetched again when it comes.
func (m *Model) fetch(keys ...string) tea.Cmd {
	var cmds []tea.Cmd
	for _, k := range keys {
		if m.inflight[k] {
			m.dirty[k] = true
			continue
		}
		if c := m.f.cmd(k); c != nil {
			m.inflight[k] = true
			cmds = append(cmds, c)
		}
	}
	return tea.Batch(cmds...)
}

// screenKeys are what screen s shows, not yet fetched. None while the
// agent is down: Follow says when it is back.
func (m *Model) screenKeys(s screen) []string {
	if m.conn.down {
		return nil
	}
	var want []string
	switch s {
	case scrServices:
		for _, n := range m.d.nodes() {
			want = append(want, keyLatest+n)
			for _, p := range m.d.probes() {
				want = append(want, keyHist+histKey(n, p))
			}
		}
	case scrSync:
		want = []string{keyLog, keyDrift}
	case scrPackages:
		want = []string{keyParity}
	case scrModules:
		want = []string{keyModules, keyParity}
	case scrReports:
		want = []string{keyReports}
	case scrFailover:
		want = []string{keyFStatus, keyFHistory}
	}
	var out []string
	for _, k := range want {
		if _, ok := m.d.at[k]; !ok && m.d.errs[k] == "" && !m.inflight[k] {
			out = append(out, k)
		}
	}
	return out
}

// Update handles a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		// A terminal that does not say its size (0x0) gets 80x24.
		if msg.Width > 0 && msg.Height > 0 {
			m.w, m.h = msg.Width, msg.Height
		}
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	case tea.PasteMsg:
		// Text pasted while filtering goes into the filter, as typed keys
		// do (bubbletea v1 gave it as keys); elsewhere it is no key. A
		// filter is one line: the line breaks and other controls go.
		if m.filtering {
			v := &m.views[m.cur]
			v.filter += strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return -1
				}
				return r
			}, msg.Content)
			v.cursor, v.off = 0, 0
		}
	case loadedMsg:
		return m, m.onLoaded(msg)
	case actionMsg:
		return m, m.onAction(msg)
	case eventMsg:
		m.d.addEvents(msg.ev)
		return m, m.fetch(m.concerns(msg.ev.Kind, msg.ev.Node, msg.ev.Fields["probe"])...)
	case upMsg:
		was := m.conn.down
		m.conn = conn{}
		if was {
			return m, m.refetch()
		}
	case downMsg:
		m.goneDown(msg.err, msg.wait)
	case tickMsg:
		if m.conn.down {
			break
		}
		// The peer's side changes without an event here (its applied
		// commit, its last contact, its verdict): the state is asked
		// again each tick, and the newest results on the Services screen.
		keys := []string{keyStatus, keyReady}
		if m.cur == scrServices {
			for _, n := range m.d.nodes() {
				keys = append(keys, keyLatest+n)
			}
		}
		return m, m.fetch(keys...)
	}
	return m, nil
}

// goneDown notes that the agent does not answer.
func (m *Model) goneDown(err error, wait time.Duration) {
	if !m.conn.down {
		m.conn.since = m.o.now()
	}
	m.conn.down, m.conn.wait = true, wait
	m.conn.err = "the agent's event stream ended"
	if err != nil {
		m.conn.err = err.Error()
	}
}

func (m *Model) onLoaded(msg loadedMsg) tea.Cmd {
	delete(m.inflight, msg.key)
	var cmds []tea.Cmd
	if m.dirty[msg.key] {
		delete(m.dirty, msg.key)
		cmds = append(cmds, m.fetch(msg.key))
	}
	switch {
	case msg.err != nil && agentDown(msg.err):
		m.goneDown(msg.err, m.conn.wait)
	case msg.err != nil:
		m.d.errs[msg.key] = msg.err.Error()
	default:
		delete(m.d.errs, msg.key)
		msg.apply(m.d)
		m.d.at[msg.key] = m.o.now()
		if m.conn.down && m.conn.wait == 0 {
			m.conn = conn{}
		}
	}
	// The state names the nodes and the results the probes: what the
	// screen shows may be known only now.
	cmds = append(cmds, m.fetch(m.screenKeys(m.cur)...))
	return tea.Batch(cmds...)
}

func (m *Model) onAction(msg actionMsg) tea.Cmd {
	if msg.err != nil {
		m.note, m.noteBad = msg.what+" failed: "+msg.err.Error(), true
		if agentDown(msg.err) {
			m.goneDown(msg.err, m.conn.wait)
		}
		return nil
	}
	m.note, m.noteBad = msg.text, false
	if msg.apply != nil {
		msg.apply(m.d)
	}
	return m.fetch(msg.after...)
}

// refetch asks again for everything fetched so far (the agent is back):
// the results of the last day only from where they were.
func (m *Model) refetch() tea.Cmd {
	keys := []string{keyStatus, keyReady, keyEvents}
	for k := range m.d.at {
		if strings.HasPrefix(k, keyHist) {
			k = keyRecent + strings.TrimPrefix(k, keyHist)
		}
		if !contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return tea.Batch(m.fetch(keys...), m.fetch(m.screenKeys(m.cur)...))
}

// concerns are the keys an event of kind changes, among those fetched.
func (m *Model) concerns(kind, node, probe string) []string {
	keys := []string{keyStatus}
	switch {
	case kind == "ready-changed" || strings.HasPrefix(kind, "peer-"):
		keys = append(keys, keyReady)
		if kind == "ready-changed" {
			// Mostly a probe of either node turned: its results too.
			for _, n := range m.d.nodes() {
				keys = append(keys, keyLatest+n)
			}
		}
	case kind == "probe-red" || kind == "probe-green" || strings.HasPrefix(kind, "alert-"):
		keys = append(keys, keyReady, keyLatest+node)
		if probe != "" {
			keys = append(keys, keyRecent+histKey(node, probe))
		}
	case strings.HasPrefix(kind, "config-"):
		// An apply on the secondary may bring the primary's selection.
		keys = append(keys, keyLog, keyDrift, keyModules)
	case strings.HasPrefix(kind, "modules-") || kind == "boundary-pending":
		keys = append(keys, keyModules)
	case kind == "report":
		keys = append(keys, keyReports)
	case kind == "inventory" || kind == "drift" || kind == "parity-apply":
		keys = append(keys, keyParity)
	case strings.HasPrefix(kind, "failover") || strings.HasPrefix(kind, "bootcheck") || kind == "promote" || kind == "adopt":
		keys = append(keys, keyFStatus, keyFHistory)
	}
	var out []string
	for _, k := range keys {
		base := k
		if strings.HasPrefix(k, keyRecent) {
			base = keyHist + strings.TrimPrefix(k, keyRecent)
		}
		_, fetched := m.d.at[base]
		if fetched || m.d.errs[base] != "" || k == keyStatus || k == keyReady {
			out = append(out, k)
		}
	}
	return out
}

// onKey handles a key.
func (m *Model) onKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.ask != nil {
		q := m.ask
		m.ask = nil
		if msg.String() == "y" || msg.String() == "Y" {
			m.note, m.noteBad = q.what+"...", false
			return q.yes
		}
		m.note, m.noteBad = "not done: the answer was not y", false
		return nil
	}
	v := &m.views[m.cur]
	if m.filtering {
		switch msg.Code {
		case tea.KeyEnter:
			m.filtering = false
		case tea.KeyEscape:
			m.filtering, v.filter = false, ""
		case tea.KeyBackspace:
			if r := []rune(v.filter); len(r) > 0 {
				v.filter = string(r[:len(r)-1])
			}
		default:
			// Text is what a key types (space too), none for the keys
			// that type nothing (arrows, ctrl+...).
			v.filter += msg.Text
		}
		v.cursor, v.off = 0, 0
		return nil
	}
	m.note = ""
	switch {
	case key.Matches(msg, k.Quit):
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
	case key.Matches(msg, k.Next):
		return m.show((m.cur + 1) % nScreens)
	case key.Matches(msg, k.Prev):
		return m.show((m.cur + nScreens - 1) % nScreens)
	case key.Matches(msg, k.Jump):
		return m.show(screen(msg.String()[0] - '1'))
	case key.Matches(msg, k.Refresh):
		return m.refetch()
	case key.Matches(msg, k.Back):
		if v.detail {
			v.detail = false
		} else {
			v.filter = ""
		}
	case key.Matches(msg, k.Filter) && m.cur != scrOverview && m.cur != scrFailover:
		m.filtering, v.detail = true, false
	case key.Matches(msg, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom):
		m.move(msg)
	default:
		return m.screenKey(msg)
	}
	return nil
}

// show goes to screen s, and fetches what it shows. The newest results
// are asked again each time the Services screen is shown: between ticks
// (15 s) they change without an event here (the peer's rounds).
func (m *Model) show(s screen) tea.Cmd {
	m.cur = s
	m.filtering = false
	keys := m.screenKeys(s)
	if s == scrServices && !m.conn.down {
		for _, n := range m.d.nodes() {
			if k := keyLatest + n; !contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return m.fetch(keys...)
}

// move moves the selection, or scrolls a screen without one.
func (m *Model) move(msg tea.KeyPressMsg) {
	k, v := m.keys, &m.views[m.cur]
	page := max(m.bodyHeight()-1, 1)
	delta := 0
	switch {
	case key.Matches(msg, k.Up):
		delta = -1
	case key.Matches(msg, k.Down):
		delta = 1
	case key.Matches(msg, k.PageUp):
		delta = -page
	case key.Matches(msg, k.PageDown):
		delta = page
	case key.Matches(msg, k.Top):
		delta = -1 << 30
	case key.Matches(msg, k.Bottom):
		delta = 1 << 30
	}
	if v.detail {
		v.doff = max(v.doff+delta, 0)
		return
	}
	p := m.page()
	if p.items == 0 {
		v.off = max(v.off+delta, 0)
		return
	}
	if m.cur == scrEvents && m.follow {
		v.cursor = p.items - 1 // following: on the newest
	}
	v.cursor = min(max(v.cursor+delta, 0), p.items-1)
	if m.cur == scrEvents {
		m.follow = v.cursor == p.items-1
	}
}

// screenKey handles the keys of one screen.
func (m *Model) screenKey(msg tea.KeyPressMsg) tea.Cmd {
	k, v := m.keys, &m.views[m.cur]
	switch {
	case (m.cur == scrServices || m.cur == scrEvents) && key.Matches(msg, k.Enter):
		if p := m.page(); m.cur == scrEvents && m.follow && p.items > 0 {
			v.cursor = p.items - 1
		}
		v.detail, v.doff = true, 0
	case m.cur == scrServices && key.Matches(msg, k.RunProbe):
		return m.runProbe()
	case m.cur == scrSync && key.Matches(msg, k.Enter):
		if c := m.selectedCommit(); c != "" {
			v.detail, v.doff = true, 0
			return m.fetch(keyDiff + c)
		}
	case m.cur == scrSync && key.Matches(msg, k.Rollback):
		return m.askRollback()
	case m.cur == scrFailover && key.Matches(msg, k.Plan):
		m.ask = &question{what: "making the plan", yes: m.f.plan(),
			text: "Make and record the plan of a planned disk swap now? It is refused unless READY. [y/N]"}
	case m.cur == scrPackages && key.Matches(msg, k.Apply):
		return m.askApply()
	case m.cur == scrModules && key.Matches(msg, k.Enter):
		if _, ok := m.selectedModule(); ok {
			v.detail, v.doff = true, 0
		}
	case m.cur == scrModules && key.Matches(msg, k.Use):
		return m.askUse()
	case m.cur == scrModules && key.Matches(msg, k.ModRollback):
		return m.askModuleRollback()
	case m.cur == scrReports && key.Matches(msg, k.Enter):
		rows := filterReports(m.d.reports, v.filter)
		if v.cursor >= len(rows) {
			return nil
		}
		ref := reportRef(m.d.reports, rows[v.cursor])
		v.open, v.detail, v.doff = ref, true, 0
		if m.d.texts[ref] == nil {
			return m.fetch(keyReport + ref)
		}
	case m.cur == scrReports && key.Matches(msg, k.Build):
		// Built anew each time: the week goes on.
		v.open, v.detail, v.doff = reportNow, true, 0
		return m.fetch(keyReport + reportNow)
	case m.cur == scrEvents && key.Matches(msg, k.Follow):
		m.follow = !m.follow
	}
	return nil
}

// runProbe runs the selected service's probe on this node now.
func (m *Model) runProbe() tea.Cmd {
	probes := filterList(m.d.probes(), m.views[scrServices].filter)
	c := m.views[scrServices].cursor
	self := m.d.self()
	if c >= len(probes) || self == nil {
		m.note, m.noteBad = "nothing to run: no probe selected, or this node is not known yet", true
		return nil
	}
	m.note, m.noteBad = fmt.Sprintf("running %s on %s (the probes of this node only)...", probes[c], self.Name), false
	return m.f.verifyNow(self.Name, probes[c])
}

// selectedCommit is the commit selected on the Sync screen.
func (m *Model) selectedCommit() string {
	log := filterLog(m.d.log, m.views[scrSync].filter)
	if c := m.views[scrSync].cursor; c < len(log) {
		return log[c].Commit
	}
	return ""
}

// askRollback asks before it rolls the configuration back to the
// selected commit.
func (m *Model) askRollback() tea.Cmd {
	c := m.selectedCommit()
	self := m.d.self()
	switch {
	case c == "":
		m.note, m.noteBad = "no commit selected", true
	case self == nil || self.Role != "primary":
		m.note, m.noteBad = "rollback is done on the primary: this node is not the primary", true
	default:
		m.ask = &question{what: "rolling back", yes: m.f.rollback(c),
			text: fmt.Sprintf("Restore the configuration of %s on this primary, as a new commit the secondary applies? [y/N]", short(c))}
	}
	return nil
}

// bodyHeight is how many lines the screen's body has.
func (m *Model) bodyHeight() int { return max(m.h-3-len(m.footer()), 1) }

// View is the UI's frame, on the alternate screen: the UI takes the
// whole terminal, and what was on it is there again when it quits.
func (m *Model) View() tea.View {
	v := tea.NewView(m.draw())
	v.AltScreen = true
	return v
}

// draw draws the UI: one line of at most m.w columns for each of its
// m.h lines.
func (m *Model) draw() string {
	if m.w <= 0 || m.h <= 0 {
		return ""
	}
	footer := m.footer()
	bh := max(m.h-3-len(footer), 1)
	lines := []string{m.tabs(), m.statusLine(), ""}
	lines = append(lines, m.scroll(m.page(), bh)...)
	lines = append(lines, footer...)
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.w, "")
	}
	if len(lines) > m.h {
		lines = lines[:m.h]
	}
	out := strings.Join(lines, "\n")
	if !m.o.color {
		// No colour, and no other style either, as the UI drew it on
		// lipgloss v1 (termenv's Ascii profile): the marks ("[1 Overview]",
		// ">") show what is selected without one.
		out = ansi.Strip(out)
	}
	if m.th.ascii {
		// Whatever came through: the Linux console draws ASCII only.
		out = strings.Map(func(r rune) rune {
			if r > 0x7e {
				return '?'
			}
			return r
		}, out)
	}
	return out
}

// scroll is the part of p shown in h lines, the selection in view.
func (m *Model) scroll(p page, h int) []string {
	v := &m.views[m.cur]
	lines, off := p.lines, &v.off
	if v.detail && p.detail != nil {
		lines, off = p.detail, &v.doff
	} else if p.sel >= 0 {
		if m.cur == scrEvents && m.follow && p.items > 0 {
			v.cursor = p.items - 1
			p = m.page()
		}
		if p.sel < *off {
			*off = p.sel
		}
		if p.sel >= *off+h {
			*off = p.sel - h + 1
		}
		lines = p.lines
	}
	*off = max(min(*off, len(lines)-h), 0)
	out := lines[*off:min(*off+h, len(lines))]
	for len(out) < h {
		out = append(out, "")
	}
	return out
}

// footer is the line of notes or questions and the help.
func (m *Model) footer() []string {
	var out []string
	v := m.views[m.cur]
	switch {
	case m.ask != nil:
		for _, l := range wrap(m.ask.text, m.w, "") {
			out = append(out, m.th.warn.Bold(true).Render(l))
		}
	case m.filtering:
		out = append(out, "filter: "+v.filter+"_  (enter: keep, esc: clear)")
	case m.note != "":
		st := m.th.ok
		if m.noteBad {
			st = m.th.bad
		}
		out = append(out, st.Render(m.th.clean(m.note)))
	case v.filter != "":
		out = append(out, m.th.dim.Render("filter: "+v.filter+" (esc clears)"))
	}
	keys := m.keys
	keys.screen, keys.detail = m.cur, v.detail
	h := m.help
	h.SetWidth(m.w)
	return append(out, strings.Split(h.View(keys), "\n")...)
}

// tabs is the line of screens, the one shown marked.
func (m *Model) tabs() string {
	build := func(numbers bool) string {
		var parts []string
		for s := range nScreens {
			label := s.String()
			if numbers || s == m.cur {
				label = fmt.Sprintf("%d %s", s+1, label)
			}
			if s == m.cur {
				parts = append(parts, m.th.tabOn.Render("["+label+"]"))
			} else {
				parts = append(parts, m.th.tabOff.Render(label))
			}
		}
		return strings.Join(parts, " ")
	}
	if t := build(true); ansi.StringWidth(t) <= m.w {
		return t
	}
	return build(false)
}
