package tui

import (
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agentclient"
	"github.com/sentryha/sentry/internal/store"
)

// BenchmarkFirstFrame: from New to the first frame, before the agent
// answers (what the terminal shows at once).
func BenchmarkFirstFrame(b *testing.B) {
	a := agentclient.New("testdata/no-agent.sock")
	for b.Loop() {
		m := New(a, WithClock(clock))
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		m.Init()
		_ = m.View()
	}
}

// BenchmarkFirstFrameWithData: from New to the first frame with the
// verdict and both nodes, fetched from a fake agent over its socket.
func BenchmarkFirstFrameWithData(b *testing.B) {
	sock := socket(b)
	readyFixture(fixtureNow).serve(b, sock)
	a := agentclient.New(sock)
	for b.Loop() {
		m := New(a, WithClock(clock))
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		settle(m, m.Init())
		if v := m.View().Content; len(v) == 0 {
			b.Fatal("no frame")
		}
	}
}

// weekModel is the Services screen holding a week of results: 15 probes
// on 2 nodes, one run every 30 s.
func weekModel(w, h int) *Model {
	m := New(agentclient.New("testdata/no-agent.sock"), WithClock(clock), WithScreen("services"))
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.d.state = &api.State{Nodes: []api.Node{{Name: "node-p", Self: true, Role: "primary"}, {Name: "node-s", Role: "secondary"}}}
	for _, n := range []string{"node-p", "node-s"} {
		for p := range 15 {
			probe := fmt.Sprintf("probe-%02d", p)
			rs := make([]store.StoredResult, 0, 7*24*120)
			for i := range 7 * 24 * 120 {
				rs = append(rs, result(n, probe, fixtureNow.Add(-time.Duration(i)*30*time.Second), int64(5+(i*31+p)%90), i%500 != 7, ""))
			}
			m.d.setHistory(histKey(n, probe), rs)
			m.d.latest[n] = append(m.d.latest[n], rs[0])
		}
	}
	return m
}

// BenchmarkServicesRedraw: one frame of the Services screen with a week
// of results (the sparklines cover the last 24 hours of it): redrawn as
// it is (a key, a tick), and cold (every sparkline drawn anew, as after
// new results on every probe).
func BenchmarkServicesRedraw(b *testing.B) {
	for _, sz := range sizes {
		b.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(b *testing.B) {
			m := weekModel(sz[0], sz[1])
			for b.Loop() {
				_ = m.View()
			}
		})
		b.Run(fmt.Sprintf("%dx%d-cold", sz[0], sz[1]), func(b *testing.B) {
			m := weekModel(sz[0], sz[1])
			for b.Loop() {
				clear(m.d.sparks)
				_ = m.View()
			}
		})
	}
}
