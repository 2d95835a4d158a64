package tui

import (
	"slices"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/store"
)

// peerDown: the peer does not answer the agent's request for its kept
// reports.
func peerDown(f *fixture) {
	f.peerErr = "node-s did not answer: dial tcp 10.0.0.2:7443: connect: no route to host"
}

// onSecondary: the UI runs on node-s, the secondary, whose agent holds
// back what the primary's web-nginx asks beyond its approved boundary.
func onSecondary(f *fixture) {
	f.state.Nodes[0].Self, f.state.Nodes[1].Self = false, true
	f.state.Nodes[1].BoundaryPending = []string{"/etc/sentry-web-extra"}
	f.state.Summarize()
	f.modules.Node, f.modules.Secondary, f.modules.Pending = "node-s", true, []string{"/etc/sentry-web-extra"}
	for i := range f.modules.Modules {
		if f.modules.Modules[i].Name == "web-nginx" {
			f.modules.Modules[i].HeldBack = []string{"/etc/sentry-web-extra"}
		}
	}
}

// TestReportOpenAndBack: enter opens the selected report (this node's
// built by its agent, the peer's fetched from it), as text, scrollable;
// esc goes back to the list; c builds this week so far.
func TestReportOpenAndBack(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("reports"))
	if got := strings.Join(f.took(), "\n"); !strings.Contains(got, "GET /v1/reports?peer=1") {
		t.Fatalf("the list is not asked with the peer's:\n%s", got)
	}
	list := frame(m)
	if missing := missing(list, "WEEK", "2026-W48  node-p", "2026-W45  node-s", "UNKNOWN (61.3 % of week 45)", "(partial week)"); len(missing) > 0 {
		t.Fatalf("the list lacks %v:\n%s", missing, list)
	}
	press(m, "down", "enter")
	if !slices.Equal(f.bodies, []string{"report  2026-W47 text"}) {
		t.Fatalf("enter on 2026-W47 asked %v", f.bodies)
	}
	v := frame(m)
	if missing := missing(v, "report 2026-W47, built now from this node's store", "NOT READY (97.9 % of week 47)", "Verdict"); len(missing) > 0 {
		t.Fatalf("the report lacks %v:\n%s", missing, v)
	}
	press(m, "G") // the end of the report
	if v := frame(m); !strings.Contains(v, "peer node-s was unreachable for 40m") || strings.Contains(v, "built now") {
		t.Errorf("G: not at the end of the report:\n%s", v)
	}
	press(m, "esc")
	if v := frame(m); v != list && !strings.Contains(v, "> 2026-W47") {
		t.Errorf("esc: not back on the list, 2026-W47 selected:\n%s", v)
	}
	// Opened again: shown from what was fetched, not asked again.
	press(m, "enter", "esc", "G", "enter")
	if !slices.Equal(f.bodies, []string{"report  2026-W47 text", "report peer 2026-W45 text"}) {
		t.Fatalf("asked %v", f.bodies)
	}
	if v := frame(m); !strings.Contains(v, "report 2026-W45, kept by node-s (fetched over the peer link)") {
		t.Errorf("the peer's report:\n%s", v)
	}
	press(m, "esc", "c", "esc", "c")
	if n := len(f.bodies); n != 4 || f.bodies[2] != "report  current text" || f.bodies[3] != "report  current text" {
		t.Fatalf("c (twice): asked %v, want this week built each time", f.bodies)
	}
	if v := frame(m); !strings.Contains(v, "report 2026-W49, the week so far, built now from this node's store") {
		t.Errorf("c:\n%s", v)
	}
	// / filters the list.
	press(m, "esc", "/", "n", "o", "d", "e", "-", "s", "enter")
	if v := frame(m); strings.Contains(v, "2026-W48") || !strings.Contains(v, "2026-W45  node-s") {
		t.Errorf("/node-s:\n%s", v)
	}
}

// TestReportsPeerError: the peer not answering is said, and this node's
// reports are listed; its report asked for says why there is none.
func TestReportsPeerError(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	peerDown(f)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("reports"))
	v := frame(m)
	if missing := missing(v, "peer: node-s did not answer: dial tcp 10.0.0.2:7443: connect: no", "only this node's kept reports are listed", "2026-W48  node-p"); len(missing) > 0 {
		t.Fatalf("%v missing:\n%s", missing, v)
	}
	if strings.Contains(v, "2026-W45") {
		t.Errorf("the peer's report is listed:\n%s", v)
	}
	// Listed while the peer answered, gone when its report is asked for:
	// the report says why there is none.
	sock = socket(t)
	f = readyFixture(fixtureNow)
	f.serve(t, sock)
	m = open(sock, 80, 24, WithScreen("reports"))
	f.mu.Lock()
	peerDown(f)
	f.mu.Unlock()
	press(m, "G", "enter")
	if v := frame(m); !strings.Contains(v, "the report of 2026-W45: node-s did not answer") {
		t.Errorf("the peer's report, the peer gone:\n%s", v)
	}
}

// TestModuleUseAsks: u asks before it selects the version under the
// cursor; n (or any key but y) does nothing; y selects it through the
// agent and the list is fetched again.
func TestModuleUseAsks(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("modules"))
	press(m, "G", "u")
	if v := frame(m); !strings.Contains(v, "Select web-nginx 1.2.0 (installed; in use now: 1.1.0)? The secondary follows.\n[y/N]") {
		t.Fatalf("u does not ask:\n%s", v)
	}
	press(m, "n")
	if len(f.bodies) != 0 || !strings.Contains(frame(m), "not done: the answer was not y") {
		t.Fatalf("answered n: asked %v\n%s", f.bodies, frame(m))
	}
	press(m, "u", "enter")
	if len(f.bodies) != 0 || m.ask != nil {
		t.Fatalf("answered enter: asked %v", f.bodies)
	}
	f.took()
	press(m, "u", "y")
	if !slices.Equal(f.bodies, []string{"modules use web-nginx 1.2.0"}) {
		t.Fatalf("answered y: asked %v", f.bodies)
	}
	if got := strings.Join(f.took(), "\n"); !strings.Contains(got, "POST /v1/modules/use") || !strings.Contains(got, "GET /v1/modules?") {
		t.Errorf("after the change, the list is not fetched again:\n%s", got)
	}
	v := frame(m)
	if missing := missing(v, "web-nginx: 1.2.0 selected (installed); the secondary follows", ">     1.2.0      installed  in use"); len(missing) > 0 {
		t.Errorf("%v missing:\n%s", missing, v)
	}
	// The version in use: nothing to ask.
	press(m, "u")
	if m.ask != nil || len(f.bodies) != 1 || !strings.Contains(frame(m), "web-nginx 1.2.0 is the version in use") {
		t.Errorf("u on the version in use: asked %v\n%s", f.bodies, frame(m))
	}
}

// TestModuleRollbackAsks: R asks before it rolls the module under the
// cursor back; any answer but y cancels; a module with no version used
// before is not asked about.
func TestModuleRollbackAsks(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("modules"))
	press(m, "R") // db-postgresql: used no other version
	if m.ask != nil || !strings.Contains(frame(m), "db-postgresql has no version used before: nothing to roll back to") {
		t.Fatalf("R on db-postgresql:\n%s", frame(m))
	}
	press(m, "G", "R")
	if v := frame(m); !strings.Contains(v, "Go back to the version of web-nginx used before, and pin it (in use: 1.1.0,") {
		t.Fatalf("R does not ask:\n%s", v)
	}
	press(m, "x")
	if len(f.bodies) != 0 || !strings.Contains(frame(m), "not done") {
		t.Fatalf("answered x: asked %v", f.bodies)
	}
	press(m, "R", "N")
	if len(f.bodies) != 0 {
		t.Fatalf("answered N: asked %v", f.bodies)
	}
	press(m, "R", "y")
	if !slices.Equal(f.bodies, []string{"modules rollback web-nginx"}) {
		t.Fatalf("answered y: asked %v", f.bodies)
	}
	if v := frame(m); !strings.Contains(v, "rolled back: web-nginx: 1.0.0 selected (builtin), pinned; the secondary follows") {
		t.Errorf("no word of the rollback:\n%s", v)
	}
}

// TestModulesOnSecondary: the secondary follows the primary's selection:
// u and R say so and ask nothing; what it holds back is shown.
func TestModulesOnSecondary(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	onSecondary(f)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("modules"))
	v := frame(m)
	if missing := missing(v, "This secondary follows the primary's selection (use and roll back there)", "held back on node-s until approved there: /etc/sentry-web-extra", "held back: /etc/sentry-web-extra"); len(missing) > 0 {
		t.Errorf("%v missing:\n%s", missing, v)
	}
	for _, k := range []string{"u", "R"} {
		press(m, "G", k)
		if m.ask != nil || !strings.Contains(frame(m), "use and rollback are done on the primary") {
			t.Errorf("%s on the secondary:\n%s", k, frame(m))
		}
		press(m, "y")
	}
	if len(f.bodies) != 0 {
		t.Errorf("asked %v", f.bodies)
	}
}

// TestModuleEvents: a module event makes the Modules screen fetch the
// list again; a report event, the Reports screen's.
func TestModuleEvents(t *testing.T) {
	sock := socket(t)
	f := readyFixture(fixtureNow)
	f.serve(t, sock)
	m := open(sock, 80, 24, WithScreen("modules"))
	press(m, "8")
	f.took()
	for _, c := range []struct {
		ev   store.Event
		want string
	}{
		{store.Event{Seq: 100, Kind: "modules-use", Node: "node-p"}, "GET /v1/modules?"},
		{store.Event{Seq: 101, Kind: "boundary-pending", Node: "node-s"}, "GET /v1/modules?"},
		{store.Event{Seq: 102, Kind: "report", Node: "node-p"}, "GET /v1/reports?peer=1"},
	} {
		_, cmd := m.Update(eventMsg{c.ev})
		settle(m, cmd)
		if got := strings.Join(f.took(), "\n"); !strings.Contains(got, c.want) {
			t.Errorf("%s: fetched\n%s\nwant %s", c.ev.Kind, got, c.want)
		}
	}
}
