package agent

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/hwid"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/modules"
)

// The parity component's own tests are in package parity; these are of
// its wiring: the peer link's routes, the hello's fan-out, and the
// helpers the peer link's tests share.

const (
	machineA = "dmi:uuid=aaaaaaaa-0000-0000-0000-00000000000a"
	machineB = "dmi:uuid=bbbbbbbb-0000-0000-0000-00000000000b"
)

// DebRequest is what the peer link's tests ask for.
type DebRequest = parity.DebRequest

// testAptTrust is where the agents the test starts next (startNode) read
// apt's files.
var testAptTrust apttrust.Options

// testParity adjusts the parity options of the agents applyAgent makes
// next (newFetchFixture sets it).
var testParity func(*parity.Options)

// applyAgent is an agent with a role, a machine, a state folder and an
// event store in temporary folders, and no socket or peer link. Its
// parity finds no .deb and fetches none, unless newFetchFixture says.
func applyAgent(t *testing.T, name, role, peerName, machine string) *Agent {
	t.Helper()
	cfg := config.Default()
	cfg.Node.Name = name
	cfg.Node.StateDir = t.TempDir()
	tmp := t.TempDir()
	po := parity.DefaultOptions()
	po.AptArchives, po.DebFetchDir, po.AptGet = filepath.Join(tmp, "archives"), filepath.Join(tmp, "fetch"), "false"
	po.Apt = apttrust.Options{EtcDir: filepath.Join(tmp, "etc"), ListsDir: filepath.Join(tmp, "lists"), TempDir: tmp}
	if testParity != nil {
		testParity(&po)
	}
	a := &Agent{log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		stamp: &stamp.Stamp{Role: role}, cluster: &stamp.Cluster{NodeName: name, PeerName: peerName}, hw: hwid.Identity{ID: machine},
		paths: paths{clusterDir: filepath.Join(tmp, "cluster"), modules: modules.OptionsAt(t.TempDir()), parity: po}}
	a.cfg.Store(&cfg)
	st, err := store.Open(filepath.Join(cfg.Node.StateDir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.store = st
	a.newComponents() // machines, events, parity
	return a
}

// linkPeers serves p's peer API over mutual TLS under a new cluster CA,
// and points s at it, as a paired secondary calls its primary.
func linkPeers(t *testing.T, p, s *Agent) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("test-cluster", "test", now)
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string) *pki.Node {
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.SignKey(key, name, now)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "pki")
		if err := pki.Save(dir, ca.Cert, nil, cert, key); err != nil {
			t.Fatal(err)
		}
		n, err := pki.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p.node, s.node = node(p.cluster.NodeName), node(s.cluster.NodeName)
	srv := httptest.NewUnstartedServer(p.lnk().Handler())
	srv.TLS = p.node.ServerTLS()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.cluster.PeerAddress = srv.Listener.Addr().String()
}

// fetchFixture is a fake apt-get (a shell script) that logs each run and
// fetches nothing, for the agents applyAgent makes next.
type fetchFixture struct{ log string }

func newFetchFixture(t *testing.T) *fetchFixture {
	t.Helper()
	dir := t.TempDir()
	f := &fetchFixture{log: filepath.Join(dir, "apt-get.log")}
	script := fmt.Sprintf("#!/bin/sh\necho \"$PWD $*\" >> %q\necho \"E: Version '${2#*=}' for '${2%%%%=*}' was not found\" >&2\nexit 100\n", f.log)
	aptGet := filepath.Join(dir, "apt-get")
	if err := os.WriteFile(aptGet, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	testParity = func(o *parity.Options) { o.AptGet = aptGet }
	t.Cleanup(func() { testParity = nil })
	return f
}

// runs is what the fake apt-get was asked: per run, its folder and
// arguments.
func (f *fetchFixture) runs() [][]string {
	b, _ := os.ReadFile(f.log)
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, strings.Fields(l))
		}
	}
	return out
}

// The secondary fetches the primary's inventory over the peer link
// (mutual TLS, the peer server's route), and a hello tells parity the
// peer's protocol.
func TestParityOverPeerLink(t *testing.T) {
	fixture, err := filepath.Abs("../../synchronizer/inventory/testdata/nodes/p")
	if err != nil {
		t.Fatal(err)
	}
	testParity = func(o *parity.Options) {
		o.Root, o.DpkgDir, o.Sys = fixture, filepath.Join(fixture, "var/lib/dpkg"), ""
	}
	p := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	testParity = nil
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	linkPeers(t, p, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.parity.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	var rep *parity.Report
	waitFor(t, "the primary's inventory on the secondary", func() bool {
		rep, err = s.parity.Report(context.Background())
		return err == nil && rep.Peer.Packages > 0
	})
	if rep.Node != "node-s" || rep.Role != stamp.RoleSecondary || rep.Peer.Node != "node-p" || rep.Peer.Error != "" {
		t.Errorf("the secondary's report: node %q, role %q, peer %+v", rep.Node, rep.Role, rep.Peer)
	}
	if evs := eventsOfKind(t, p, "inventory"); len(evs) == 0 || !strings.HasPrefix(evs[0].Message, "inventory taken (agent start): ") || evs[0].Node != "node-p" {
		t.Errorf("the primary's inventory events: %+v", evs)
	}

	// A peer of protocol 1 is not asked.
	s.mu.Lock()
	s.notePeerStatus(&peer.NodeStatus{Name: "node-p", Protocol: 1})
	s.mu.Unlock()
	rep, _ = s.parity.Report(context.Background())
	if !strings.Contains(rep.Peer.Error, "the peer's agent speaks peer protocol 1") || rep.Peer.Packages == 0 {
		t.Errorf("after a hello of protocol 1: %+v", rep.Peer)
	}
}

// peerPost posts body to the peer's API through the link's client, as the
// components do.
func (a *Agent) peerPost(ctx context.Context, path, contentType string, body []byte) (*http.Response, error) {
	return a.lnk().Client().Post(ctx, path, contentType, bytes.NewReader(body))
}
