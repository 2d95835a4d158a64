package tui

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/store"
)

// everyScreen draws each screen of m, with its first item opened too.
func everyScreen(m *Model) []string {
	var out []string
	for s := range nScreens {
		press(m, string(rune('1'+s)))
		out = append(out, m.View().Content)
		press(m, "enter")
		out = append(out, m.View().Content)
		press(m, "esc")
	}
	return out
}

// TestASCII: on the Linux console (TERM=linux) every screen draws ASCII
// only, styles aside; elsewhere the sparkline has its blocks.
func TestASCII(t *testing.T) {
	sock := socket(t)
	notReadyFixture(fixtureNow).serve(t, sock)
	m := open(sock, 120, 40, append(EnvOptions(func(k string) string { return map[string]string{"TERM": "linux"}[k] }), WithClock(clock))...)
	for i, v := range everyScreen(m) {
		for _, r := range ansi.Strip(v) {
			if r > 0x7e || (r < 0x20 && r != '\n') {
				t.Fatalf("frame %d has %q, not ASCII:\n%s", i, r, ansi.Strip(v))
			}
		}
	}
	u := open(sock, 120, 40, WithScreen("services"))
	if !strings.Contains(u.View().Content, "█") {
		t.Errorf("with Unicode, the sparkline has no block:\n%s", u.View().Content)
	}
}

// TestNoColor: NO_COLOR draws no colour; without it, there is colour.
func TestNoColor(t *testing.T) {
	sock := socket(t)
	notReadyFixture(fixtureNow).serve(t, sock)
	env := func(vars map[string]string) []Option {
		return append(EnvOptions(func(k string) string { return vars[k] }), WithClock(clock))
	}
	plain := open(sock, 80, 24, env(map[string]string{"TERM": "xterm-256color", "NO_COLOR": "1"})...)
	for i, v := range everyScreen(plain) {
		if strings.Contains(v, "\x1b[3") || strings.Contains(v, "\x1b[9") {
			t.Fatalf("NO_COLOR: frame %d has a colour: %q", i, v)
		}
	}
	colour := open(sock, 80, 24, env(map[string]string{"TERM": "xterm-256color"})...)
	if v := colour.View().Content; !strings.Contains(v, "\x1b[31") && !strings.Contains(v, "\x1b[1;31") {
		t.Errorf("NOT READY is not red:\n%q", v)
	}
}

// TestResize: the frame follows the terminal's size.
func TestResize(t *testing.T) {
	sock := socket(t)
	readyFixture(fixtureNow).serve(t, sock)
	m := open(sock, 120, 40)
	for _, sz := range [][2]int{{80, 24}, {60, 15}, {200, 60}, {120, 40}} {
		m.Update(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
		for s := range nScreens {
			press(m, string(rune('1'+s)))
			checkFrame(t, m, sz[0], sz[1])
		}
	}
}

// TestRollbackAsks: R asks; anything but y does nothing; y rolls back
// the selected commit.
func TestRollbackAsks(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("sync"))
	press(m, "down", "R")
	if !strings.Contains(frame(m), "Restore the configuration of 9a8b7c6d5e4f") {
		t.Fatalf("R does not ask:\n%s", frame(m))
	}
	press(m, "n")
	if len(f.bodies) != 0 || !strings.Contains(frame(m), "not done") {
		t.Fatalf("answered n: %v\n%s", f.bodies, frame(m))
	}
	press(m, "R", "y")
	if !slices.Equal(f.bodies, []string{"rollback 9a8b7c6d5e4f3a2b1c0d"}) {
		t.Fatalf("answered y: asked %v", f.bodies)
	}
	if !strings.Contains(frame(m), "rolled back") {
		t.Errorf("no word of the rollback:\n%s", frame(m))
	}
}

// TestRollbackOnSecondary: the secondary does not roll back.
func TestRollbackOnSecondary(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.state.Nodes[0].Self, f.state.Nodes[1].Self = false, true
	f.state.Summarize()
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("sync"))
	press(m, "R")
	if len(f.bodies) != 0 || !strings.Contains(frame(m), "rollback is done on the primary") {
		t.Fatalf("asked %v:\n%s", f.bodies, frame(m))
	}
}

// TestRunProbe: r runs the selected probe on this node now, and fetches
// its results again.
func TestRunProbe(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("services"))
	f.took()
	press(m, "down", "r")
	if !slices.Equal(f.bodies, []string{"verify dns"}) {
		t.Fatalf("asked %v", f.bodies)
	}
	got := strings.Join(f.took(), "\n")
	if missing := missing(got, "/v1/verify/now", "/v1/verify/results?n=20&node=node-p&probe=dns"); len(missing) > 0 {
		t.Errorf("after the run, not fetched: %v\n%s", missing, got)
	}
	if !strings.Contains(frame(m), "ran dns on node-p: 1 passed, 0 failed") {
		t.Errorf("no word of the run:\n%s", frame(m))
	}
}

// TestEventConcerns: an event makes the UI fetch what it concerns only.
func TestEventConcerns(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("services"))
	press(m, "3") // the log too
	f.took()
	for _, c := range []struct {
		ev   store.Event
		want []string
	}{
		{store.Event{Seq: 100, Kind: "probe-red", Node: "node-s", Fields: map[string]string{"probe": "web"}},
			[]string{"GET /v1/status?", "GET /v1/ready?", "GET /v1/verify/results?n=0&node=node-s&probe=", "GET /v1/verify/results?n=20&node=node-s&probe=web"}},
		{store.Event{Seq: 101, Kind: "config-applied", Node: "node-s"}, []string{"GET /v1/status?", "GET /v1/config/log?n=200", "GET /v1/config/drift?"}},
		{store.Event{Seq: 102, Kind: "inventory", Node: "node-s"}, []string{"GET /v1/status?"}}, // parity not shown yet
		{store.Event{Seq: 103, Kind: "token", Node: "node-p"}, []string{"GET /v1/status?"}},
		// The verdict turned: mostly a probe of either node did.
		{store.Event{Seq: 104, Kind: "ready-changed", Node: "node-p"},
			[]string{"GET /v1/status?", "GET /v1/ready?", "GET /v1/verify/results?n=0&node=node-p&probe=", "GET /v1/verify/results?n=0&node=node-s&probe="}},
	} {
		_, cmd := m.Update(eventMsg{c.ev})
		settle(m, cmd)
		got := f.took()
		slices.Sort(got)
		slices.Sort(c.want)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: fetched\n\t%s\nwant\n\t%s", c.ev.Kind, strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
		}
	}
	if n := len(m.d.events); m.d.events[n-1].Seq != 104 {
		t.Errorf("the events end with %+v", m.d.events[n-1])
	}
}

// TestKeys: tab, shift+tab and the numbers move between screens; ? shows
// every key; / filters; q quits.
func TestKeys(t *testing.T) {
	sock := socket(t)
	readyFixture(fixtureNow).serve(t, sock)
	m := open(sock, 80, 24)
	press(m, "tab", "tab")
	if m.cur != scrSync {
		t.Errorf("tab tab: on %s", m.cur)
	}
	_, cmd := m.Update(tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift})
	settle(m, cmd)
	press(m, "8")
	if m.cur != scrReports || !strings.Contains(frame(m), "2026-W48  node-p") {
		t.Errorf("8: on %s:\n%s", m.cur, frame(m))
	}
	press(m, "?")
	if !strings.Contains(frame(m), "shift+tab") {
		t.Errorf("?: no full help:\n%s", frame(m))
	}
	press(m, "2", "/", "w", "e", "b", "enter")
	if v := frame(m); strings.Contains(v, "dns") || !strings.Contains(v, "web") {
		t.Errorf("/web: the matrix is not filtered:\n%s", v)
	}
	press(m, "esc")
	if !strings.Contains(frame(m), "dns") {
		t.Errorf("esc: the filter stays:\n%s", frame(m))
	}
	press(m, " ") // a page down
	if c := m.views[scrServices].cursor; c != len(fixtureProbes)-1 {
		t.Errorf("space: on item %d, want the last, %d", c, len(fixtureProbes)-1)
	}
	_, cmd = m.Update(tea.KeyPressMsg{Code: 'q', Text: "q"})
	if cmd == nil {
		t.Fatal("q: no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
	// ctrl+c quits too, even while a question waits for its answer.
	press(m, "3", "R")
	if m.ask == nil {
		t.Fatalf("R on Sync: no question:\n%s", frame(m))
	}
	_, cmd = m.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	if cmd == nil {
		t.Fatal("ctrl+c: no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("ctrl+c does not quit")
	}
}

// TestFilterPaste: text pasted while filtering goes into the filter, on
// one line, as typed keys do; pasted elsewhere it is no key (a pasted q
// does not quit).
func TestFilterPaste(t *testing.T) {
	sock := socket(t)
	readyFixture(fixtureNow).serve(t, sock)
	m := open(sock, 80, 24, WithScreen("services"))
	if _, cmd := m.Update(tea.PasteMsg{Content: "q"}); cmd != nil || m.views[scrServices].filter != "" {
		t.Fatalf("q pasted, not filtering: command %v, filter %q", cmd, m.views[scrServices].filter)
	}
	press(m, "/")
	m.Update(tea.PasteMsg{Content: "w\neb\r"})
	press(m, "enter")
	if v := frame(m); m.views[scrServices].filter != "web" || strings.Contains(v, "dns") || !strings.Contains(v, "web") {
		t.Errorf("web pasted: filter %q:\n%s", m.views[scrServices].filter, v)
	}
}

// terminal is a terminal that the program draws on, as the operator's
// does: bubbletea v2 writes only the cells that changed since the last
// frame, so a text is on the screen, not always in one piece in what was
// written.
type terminal struct {
	mu sync.Mutex
	vt *vt.Emulator
}

func newTerminal(t *testing.T, w, h int) *terminal {
	term := &terminal{vt: vt.NewEmulator(w, h)}
	// The terminal's answers (the program asks it which modes it has)
	// are read and dropped: unread, they would block its writes. Its
	// input pipe closed, the reading ends.
	go io.Copy(io.Discard, term.vt)
	t.Cleanup(func() {
		if c, ok := term.vt.InputPipe().(io.Closer); ok {
			c.Close()
		}
	})
	return term
}

// Write draws p. A program whose input is no terminal (teatest's) draws
// for a terminal that is not in raw mode, whose line discipline turns \n
// into \r\n (ONLCR): this one does that too.
func (term *terminal) Write(p []byte) (int, error) {
	term.mu.Lock()
	defer term.mu.Unlock()
	if _, err := term.vt.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// screen is the text on the screen now.
func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.vt.String()
}

// TestLive runs the program (teatest) with Follow against a fake agent,
// and reads its screen: an event turns the verdict NOT READY; the agent
// going away is said and what was shown kept; the agent back, the UI
// recovers by itself.
func TestLive(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	stop := f.serve(t, sock)
	a := agentclient.New(sock)
	m := New(a, WithClock(clock), WithColor(false))
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(ctx, a, tm.Send, Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}, 0)
	}()
	defer func() { cancel(); <-done }()
	term := newTerminal(t, 100, 30)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tm.Output().Read(buf)
			term.Write(buf[:n])
			if err != nil && n == 0 {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(term.screen(), what) {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no %q on the screen:\n%s", what, term.screen())
	}
	waitFor("VERDICT  READY")
	// web fails on S: the agent records it, and judges NOT READY.
	f.mu.Lock()
	nr := notReadyFixture(fixtureNow)
	f.state, f.ready = nr.state, nr.ready
	f.mu.Unlock()
	f.stream <- store.Event{Seq: 50, Time: fixtureNow, Kind: "ready-changed", Node: "node-p", Message: "verdict NOT READY", Fields: map[string]string{"verdict": string(readiness.NotReady)}}
	waitFor("VERDICT  NOT READY")
	waitFor("x verifier: web on node-s fails")
	// The agent goes away: the screen says so, and keeps what it showed.
	stop()
	close(f.stream)
	waitFor("AGENT DOWN")
	waitFor("retrying in")
	if v := term.screen(); strings.Contains(v, "agent up") || !strings.Contains(v, "VERDICT  NOT READY") || !strings.Contains(v, "x verifier: web on node-s fails") {
		t.Errorf("the agent down, the screen does not keep what it showed:\n%s", v)
	}
	// It comes back.
	f2 := notReadyFixture(fixtureNow)
	f2.serve(t, sock)
	waitFor("agent up")
	tm.Type("q")
	v := ansi.Strip(tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).View().Content)
	if missing := missing(v, "agent up", "NOT READY", "node-s (secondary)"[:6]); len(missing) > 0 {
		t.Errorf("the last frame lacks %v:\n%s", missing, v)
	}
}

// TestDownKeeps: the agent gone, the screen says so and keeps what it
// had; back, the UI fetches again.
func TestDownKeeps(t *testing.T) {
	sock := socket(t)
	stop := readyFixture(fixtureNow).serve(t, sock)
	m := open(sock, 80, 24)
	stop()
	_, cmd := m.Update(downMsg{err: agentclient.ErrStreamClosed, wait: 4 * time.Second})
	settle(m, cmd)
	press(m, "2") // nothing fetched while down
	press(m, "1")
	v := frame(m)
	if missing := missing(v, "AGENT DOWN since 21:00:30, retrying in 4s", "The agent does not answer", "VERDICT  READY", "dmi:uuid=bbbb-2222"); len(missing) > 0 {
		t.Errorf("down: %v missing:\n%s", missing, v)
	}
	f := notReadyFixture(fixtureNow)
	f.serve(t, sock)
	press(m, "2")
	_, cmd = m.Update(upMsg{})
	settle(m, cmd)
	press(m, "1")
	if v := frame(m); strings.Contains(v, "AGENT DOWN") || !strings.Contains(v, "VERDICT  NOT READY") {
		t.Errorf("back up:\n%s", v)
	}
	got := strings.Join(f.took(), "\n")
	if missing := missing(got, "/v1/status", "/v1/ready", "/v1/events", "/v1/verify/results"); len(missing) > 0 {
		t.Errorf("back up, not fetched again: %v\n%s", missing, got)
	}
}

// TestPeerUnreachable: the status line and the table say so.
func TestPeerUnreachable(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.state.Nodes[1].Reachable = false
	f.state.Nodes[1].Error = "dial tcp 10.0.0.2:7443: connect: no route to host"
	f.state.Summarize()
	f.serve(t, sock)
	v := frame(open(sock, 120, 40))
	if missing := missing(v, "PEER node-s UNREACHABLE, last contact 12s ago", "12s ago, unreachable", "node-s: dial tcp 10.0.0.2:7443: connect: no route to host"); len(missing) > 0 {
		t.Errorf("%v missing:\n%s", missing, v)
	}
}

// TestTickAsksState: the peer's side changes without an event on this
// node (its applied commit, its contact, its verdict), so each tick asks
// for the state and the verdict again; on the Services screen also the
// newest results; nothing while the agent is down.
func TestTickAsksState(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("sync"))
	f.took()
	_, cmd := m.Update(tickMsg{})
	settle(m, cmd)
	got := f.took()
	slices.Sort(got)
	if want := []string{"GET /v1/ready?", "GET /v1/status?"}; !slices.Equal(got, want) {
		t.Errorf("a tick on the Sync screen fetched\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	press(m, "2")
	f.took()
	_, cmd = m.Update(tickMsg{})
	settle(m, cmd)
	got = f.took()
	slices.Sort(got)
	if want := []string{"GET /v1/ready?", "GET /v1/status?", "GET /v1/verify/results?n=0&node=node-p&probe=", "GET /v1/verify/results?n=0&node=node-s&probe="}; !slices.Equal(got, want) {
		t.Errorf("a tick on the Services screen fetched\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	// Back to the Services screen: its newest results asked again (the
	// peer's rounds change them without an event here).
	press(m, "1")
	f.took()
	press(m, "2")
	got = f.took()
	slices.Sort(got)
	if want := []string{"GET /v1/verify/results?n=0&node=node-p&probe=", "GET /v1/verify/results?n=0&node=node-s&probe="}; !slices.Equal(got, want) {
		t.Errorf("showing the Services screen again fetched\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	m.goneDown(nil, time.Second)
	_, cmd = m.Update(tickMsg{})
	settle(m, cmd)
	if got := f.took(); len(got) != 0 {
		t.Errorf("a tick with the agent down fetched %v", got)
	}
}

// TestParityApplyAsks: A on the Packages screen asks before it carries
// out this node's part of the parity plan, and says what was done.
func TestParityApplyAsks(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 120, 40, WithScreen("packages"))
	press(m, "A")
	if !strings.Contains(frame(m), "Carry out node-p's part of the parity plan now") {
		t.Fatalf("A does not ask:\n%s", frame(m))
	}
	press(m, "n")
	if len(f.bodies) != 0 || !strings.Contains(frame(m), "not done") {
		t.Fatalf("answered n: %v\n%s", f.bodies, frame(m))
	}
	f.took()
	press(m, "A", "y")
	if !slices.Equal(f.bodies, []string{"parity apply yes=true"}) {
		t.Fatalf("answered y: asked %v", f.bodies)
	}
	if !strings.Contains(frame(m), "parity apply on node-p: 1 action(s) done, 1 failed") {
		t.Errorf("no word of the apply:\n%s", frame(m))
	}
	if got := f.took(); !slices.Contains(got, "GET /v1/parity?") {
		t.Errorf("the parity report is not asked again after the apply: %v", got)
	}
}
