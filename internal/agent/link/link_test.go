package link

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

// fakeWiring is what an agent gives its link, in memory: the identity
// (certificates under a temporary folder), the events, and the statuses
// of the peer handed on.
type fakeWiring struct {
	t   *testing.T
	dir string
	cfg *config.Config
	st  *store.Store

	mu       sync.Mutex
	id       Identity
	key      string
	commits  []Commit
	events   []string
	statuses []*peer.NodeStatus
}

func newFake(t *testing.T, name string) *fakeWiring {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := config.Default()
	cfg.Node.Name, cfg.Agent.Listen = name, addr
	cfg.Peer.Interval, cfg.Peer.Timeout = config.Duration{Duration: 100 * time.Millisecond}, config.Duration{Duration: 2 * time.Second}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fakeWiring{t: t, dir: dir, cfg: &cfg, st: st}
}

func (f *fakeWiring) deps() Deps {
	return Deps{
		Conf:  func() *config.Config { return f.cfg },
		Log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store: func() *store.Store { return f.st },
		Event: func(kind, node, msg string, fields map[string]string) {
			f.mu.Lock()
			f.events = append(f.events, kind)
			f.mu.Unlock()
		},
		Version:  "test",
		Hardware: func() (string, error) { return "machine-" + f.cfg.Node.Name, nil },
		Identity: func() Identity { f.mu.Lock(); defer f.mu.Unlock(); return f.id },
		Commit: func(c Commit) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if c.Fresh && f.id.Stamp != nil {
				return Initialized(f.id.Stamp)
			}
			f.commits = append(f.commits, c)
			if c.CertPEM != nil {
				if err := pki.Save(filepath.Join(f.dir, "pki"), c.CACert, c.CAKey, c.CertPEM, c.Key); err != nil {
					return err
				}
				n, err := pki.Load(filepath.Join(f.dir, "pki"))
				if err != nil {
					return err
				}
				f.id.Node = n
			}
			if c.ClusterKey != "" {
				f.key = c.ClusterKey
			}
			if c.Cluster != nil {
				f.id.Cluster = c.Cluster
			}
			if c.Stamp != nil {
				f.id.Stamp = c.Stamp
			}
			return nil
		},
		ClusterKey: func() string { f.mu.Lock(); defer f.mu.Unlock(); return f.key },
		SelfStatus: func() peer.NodeStatus {
			id := f.Identity()
			s := peer.NodeStatus{Name: f.cfg.Node.Name, Protocol: peer.ProtocolVersion, Time: time.Now().UTC()}
			if id.Stamp != nil {
				s.Role, s.ClusterID, s.Generation = id.Stamp.Role, id.Stamp.ClusterID, id.Stamp.Generation
			}
			return s
		},
		OnPeerStatus: func(h, prev *peer.NodeStatus) { f.mu.Lock(); f.statuses = append(f.statuses, h); f.mu.Unlock() },
	}
}

func (f *fakeWiring) Identity() Identity { f.mu.Lock(); defer f.mu.Unlock(); return f.id }

func (f *fakeWiring) seen() ([]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events), len(f.statuses)
}

// The link alone, with a wiring of its own: init, join, hellos both ways
// handed on to the wiring, the identity committed through it (the cluster
// key crossing once), and the primary's cluster state naming its peer.
func TestLinkPairsAndSaysHello(t *testing.T) {
	p, s := newFake(t, "node-p"), newFake(t, "node-s")
	lp, ls := New(p.deps()), New(s.deps())
	defer lp.Stop(context.Background())
	defer ls.Stop(context.Background())
	res, err := lp.Init("office", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lp.Init("again", time.Hour); !errors.Is(err, ErrInitialized) {
		t.Fatalf("a second init: %v", err)
	}
	jr, err := ls.Join(context.Background(), res.Token, lp.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if jr.Primary != "node-p" || jr.ClusterID != res.ClusterID {
		t.Fatalf("join %+v", jr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, np := p.seen()
		_, ns := s.seen()
		if np > 1 && ns > 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hellos handed on: %d on the primary, %d on the secondary", np, ns)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := lp.State(); !st.Reachable || st.Peer == nil || st.Peer.Name != "node-s" {
		t.Errorf("the primary's view of the link: %+v", st)
	}
	if c := p.Identity().Cluster; c.PeerName != "node-s" || c.PeerAddress == "" {
		t.Errorf("the primary's cluster state: %+v", c)
	}
	if s.key == "" || s.key != p.key {
		t.Errorf("cluster key: %q on the secondary, %q on the primary", s.key, p.key)
	}
	if id := s.Identity(); id.Stamp.Role != stamp.RoleSecondary || id.Node.CAKey != nil {
		t.Errorf("the secondary's identity: %+v, CA key %v", id.Stamp, id.Node.CAKey != nil)
	}
	pe, _ := p.seen()
	if i := slices.Index(pe, "init"); i < 0 || !slices.Contains(pe[i:], "token") || !slices.Contains(pe[i:], "join") {
		t.Errorf("the primary's events %v, want init, token, join", pe)
	}
}

// TestPeerVersionEvent: a contact with the peer running another version
// than at the last contact records a peer-version event naming both; after
// a restart of this agent the last contact is the stored record of the
// peer. The same version, or a first contact, records none.
func TestPeerVersionEvent(t *testing.T) {
	f := newFake(t, "node-p")
	l := New(f.deps())
	hello := func(v string) *peer.NodeStatus {
		return &peer.NodeStatus{Name: "node-s", AgentVersion: v, Protocol: peer.ProtocolVersion, Time: time.Now().UTC()}
	}
	count := func() int {
		evs, _ := f.seen()
		n := 0
		for _, e := range evs {
			if e == "peer-version" {
				n++
			}
		}
		return n
	}
	l.recordContact(hello("0.1.0"), "192.0.2.20:7443", -1)
	l.recordContact(hello("0.1.0"), "192.0.2.20:7443", -1)
	if n := count(); n != 0 {
		t.Fatalf("%d peer-version events without a change", n)
	}
	l.recordContact(hello("0.2.0"), "192.0.2.20:7443", -1)
	if n := count(); n != 1 {
		t.Fatalf("%d peer-version events after 0.1.0 -> 0.2.0, want 1", n)
	}
	// This agent restarted: a new link over the same store.
	var msgs []string
	d := f.deps()
	d.Event = func(kind, node, msg string, fields map[string]string) {
		if kind == "peer-version" {
			msgs = append(msgs, msg+" "+fields["previous_version"])
		}
	}
	l2 := New(d)
	l2.recordContact(hello("0.3.0"), "192.0.2.20:7443", -1)
	if want := "peer node-s now runs sentry 0.3.0 (it ran 0.2.0) 0.2.0"; len(msgs) != 1 || msgs[0] != want {
		t.Fatalf("after a restart: %q, want [%q]", msgs, want)
	}
}

// The peer's clock is measured from the hellos this node sends, against
// the middle of the round trip; a slow answer (the peer stamped its status
// and was then held up) or a hello the peer sent does not move it.
func TestClockOffsetFromQuickExchanges(t *testing.T) {
	f := newFake(t, "node-p")
	l := New(f.deps())
	at := func(d time.Duration) *peer.NodeStatus {
		return &peer.NodeStatus{Name: "node-s", AgentVersion: "0.1.0", Protocol: peer.ProtocolVersion, Time: time.Now().UTC().Add(d)}
	}
	// Until one of this node's hellos came back, the peer's give the
	// measure (its travel time not known).
	l.recordContact(at(-5*time.Second), "192.0.2.20:7443", -1)
	if st := l.State(); st.ClockMeasured.IsZero() || st.ClockOffset > -4900*time.Millisecond {
		t.Fatalf("the first hello the peer sent: %+v", st)
	}
	l.recordContact(at(3*time.Second), "192.0.2.20:7443", 40*time.Millisecond)
	st := l.State()
	if st.ClockMeasured.IsZero() || st.ClockOffset < 2900*time.Millisecond || st.ClockOffset > 3100*time.Millisecond {
		t.Fatalf("a quick exchange with the peer 3 s ahead: offset %s measured %s", st.ClockOffset, st.ClockMeasured)
	}
	measured := st.ClockMeasured
	// Stamped 3 s before it reached us, in an exchange of 3.2 s; then a
	// hello the peer sent, held up as long.
	l.recordContact(at(-3*time.Second), "192.0.2.20:7443", 3200*time.Millisecond)
	l.recordContact(at(-3*time.Second), "192.0.2.20:7443", -1)
	if st := l.State(); st.ClockMeasured != measured || st.ClockOffset < 2900*time.Millisecond {
		t.Fatalf("a slow exchange moved the clock: offset %s", st.ClockOffset)
	}
}
