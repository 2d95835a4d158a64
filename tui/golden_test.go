package tui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
)

var sizes = [][2]int{{80, 24}, {120, 40}}

// frame is what the terminal shows: the view without its styling.
func frame(m *Model) string { return ansi.Strip(m.View().Content) }

// checkFrame checks that the view fills the terminal and no more, on the
// alternate screen.
func checkFrame(t *testing.T, m *Model, w, h int) {
	t.Helper()
	v := m.View()
	if !v.AltScreen {
		t.Error("the view is not on the alternate screen")
	}
	lines := strings.Split(v.Content, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := ansi.StringWidth(l); n > w {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, n, w, ansi.Strip(l))
		}
	}
}

// TestGolden draws every screen at 80x24 and 120x40 from fixture agents:
// one READY, one NOT READY, and none (the agent down). go test -update
// rewrites the files in testdata.
func TestGolden(t *testing.T) {
	fixtures := []struct {
		name string
		f    *fixture
	}{{"ready", readyFixture(fixtureNow)}, {"notready", notReadyFixture(fixtureNow)}, {"down", nil}}
	for _, fx := range fixtures {
		// Nothing listens on the agent-down fixture's socket; a relative
		// path keeps the error the frame shows the same on every run.
		sock := "testdata/no-agent.sock"
		if fx.f != nil {
			sock = socket(t)
			fx.f.serve(t, sock)
		}
		for _, sz := range sizes {
			for s := range nScreens {
				name := fmt.Sprintf("%s/%s_%dx%d", fx.name, strings.ToLower(s.String()), sz[0], sz[1])
				t.Run(name, func(t *testing.T) {
					m := open(sock, sz[0], sz[1], WithScreen(strings.ToLower(s.String())))
					checkFrame(t, m, sz[0], sz[1])
					golden.RequireEqual(t, []byte(frame(m)))
				})
			}
		}
	}
}

// TestGoldenDetails: what a key opens or asks, at both sizes.
func TestGoldenDetails(t *testing.T) {
	for _, sz := range sizes {
		for _, c := range []struct {
			name   string
			screen string
			keys   []string
			fix    func(*fixture)
		}{
			{"service-last-run", "services", []string{"G", "enter"}, nil},
			{"sync-diff", "sync", []string{"enter"}, nil},
			{"sync-rollback-asks", "sync", []string{"down", "R"}, nil},
			{"failover-plan", "failover", []string{"p", "y", "G"}, nil},
			{"full-help", "overview", []string{"?"}, nil},
			{"services-filter", "services", []string{"/", "m", "a", "i", "enter"}, nil},
			{"events-filter", "events", []string{"/", "c", "o", "n", "f", "i", "g"}, nil},
			{"event-opened", "events", []string{"up", "enter"}, nil},
			{"report-opened", "reports", []string{"down", "enter"}, nil},
			{"report-opened-scrolled", "reports", []string{"down", "enter", " "}, nil},
			{"report-this-week", "reports", []string{"c"}, nil},
			{"report-peer", "reports", []string{"G", "enter"}, nil},
			{"module-opened", "modules", []string{"G", "enter"}, nil},
			{"module-use-asks", "modules", []string{"G", "u"}, nil},
			{"module-rollback-asks", "modules", []string{"G", "R"}, nil},
			{"module-used", "modules", []string{"G", "u", "y"}, nil},
			{"reports-peer-error", "reports", nil, peerDown},
			{"modules-secondary", "modules", []string{"G", "u"}, onSecondary},
		} {
			t.Run(fmt.Sprintf("%s_%dx%d", c.name, sz[0], sz[1]), func(t *testing.T) {
				// A fixture of its own: a case may change it (y).
				sock := socket(t)
				f := notReadyFixture(fixtureNow)
				if c.fix != nil {
					c.fix(f)
				}
				f.serve(t, sock)
				m := open(sock, sz[0], sz[1], WithScreen(c.screen))
				press(m, c.keys...)
				checkFrame(t, m, sz[0], sz[1])
				golden.RequireEqual(t, []byte(frame(m)))
			})
		}
	}
}
