package parity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

const (
	machineA = "dmi:uuid=aaaaaaaa-0000-0000-0000-00000000000a"
	machineB = "dmi:uuid=bbbbbbbb-0000-0000-0000-00000000000b"
)

// fixtureInventory takes the inventory of one of the inventory package's
// fixture nodes, knowing the devices of peer (as after a first exchange).
func fixtureInventory(t *testing.T, node, name, machineID string, peer *inventory.Inventory) *inventory.Inventory {
	t.Helper()
	src := inventory.Host(filepath.Join("../../../synchronizer/inventory/testdata/nodes", node))
	src.Node, src.MachineID = name, machineID
	src.Now = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	src.Initramfs = func(image string) inventory.Initramfs {
		out, err := os.ReadFile(image + ".lsinitramfs")
		if err != nil {
			return inventory.Initramfs{Image: image, State: inventory.StateUnknown, Reason: err.Error()}
		}
		return inventory.ParseLsinitramfs(image, out)
	}
	if peer != nil {
		src.Modaliases = peer.Hardware.Modaliases()
	}
	inv, err := inventory.Take(src)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// fixturePair is P's inventory (taken on machine A) and S's (machine B).
func fixturePair(t *testing.T) (p, s *inventory.Inventory) {
	t.Helper()
	p0 := fixtureInventory(t, "p", "node-p", machineA, nil)
	s0 := fixtureInventory(t, "s", "node-s", machineB, nil)
	return fixtureInventory(t, "p", "node-p", machineA, s0), fixtureInventory(t, "s", "node-s", machineB, p0)
}

// event is one event a test node recorded.
type event struct {
	Kind, Node, Message string
	Fields              map[string]string
}

// testParity is a Parity with its log and events at hand.
type testParity struct {
	*Parity
	mu     sync.Mutex
	events []event
}

func (a *testParity) lastEvents(n int) []event {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.events) < n {
		n = len(a.events)
	}
	return append([]event(nil), a.events[len(a.events)-n:]...)
}

// testOptions are the options of the nodes parityAgent makes next: their
// hardware folder (useHardwareDir) and apt (newFetchFixture).
var testOptions Options

// parityAgent is parity on a node with a role, a machine and inventories,
// and no peer link: enough for the code that does not send. Its state
// folder is a temporary one.
func parityAgent(t *testing.T, name, role, peerName, machine string, self, peerInv *inventory.Inventory) (*testParity, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	opts := testOptions
	opts.StateDir = t.TempDir()
	if opts.HardwareDir == "" {
		opts.HardwareDir = filepath.Join(t.TempDir(), "hardware")
	}
	a := &testParity{}
	id := Identity{Node: name, Role: role, PeerName: peerName, MachineID: machine}
	a.Parity = New(Deps{
		Log:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Self: func() Identity { return id },
		Event: func(kind, node, msg string, fields map[string]string) {
			a.mu.Lock()
			a.events = append(a.events, event{kind, node, msg, fields})
			a.mu.Unlock()
		},
	}, opts)
	a.self, a.peer = self, peerInv
	return a, logs
}

// applyAgent is parityAgent without inventories.
func applyAgent(t *testing.T, name, role, peerName, machine string) *testParity {
	t.Helper()
	a, _ := parityAgent(t, name, role, peerName, machine, nil, nil)
	return a
}

// useHardwareDir gives the next nodes of the test a hardware profiles'
// folder of their own, and returns it.
func useHardwareDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cluster", "hardware")
	testOptions.HardwareDir = dir
	t.Cleanup(func() { testOptions.HardwareDir = "" })
	return dir
}

// httpPeer is the peer link of a test: plain HTTP to the peer's handlers
// (the peer server's mutual TLS and limits are the link's, tested there).
type httpPeer struct{ url string }

func (h httpPeer) Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return http.DefaultClient.Do(req)
}

// FetchDeb asks in protocol 2's form (headers), which the handler under
// test answers to a peer that sent a bare request.
func (h httpPeer) FetchDeb(ctx context.Context, d DebRequest) (*peer.Deb, io.ReadCloser, error) {
	body, _ := json.Marshal(d)
	resp, err := h.Post(ctx, "/v1/parity/deb", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		env, rerr := peer.Read(resp.Body)
		if rerr == nil && env.Type == peer.TypeError {
			eb, _ := env.Error()
			return nil, nil, fmt.Errorf("the peer has no file for it: %s", eb.Message)
		}
		return nil, nil, fmt.Errorf("the peer answered %s", resp.Status)
	}
	return &peer.Deb{Filename: resp.Header.Get(peer.HeaderDebFilename), SHA256: resp.Header.Get(peer.HeaderDebSHA256), Size: resp.ContentLength}, resp.Body, nil
}

// linkPeers serves p's peer handlers, and points s at them, as a paired
// secondary calls its primary.
func linkPeers(t *testing.T, p, s *testParity) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/inventory/fetch", p.HandleInventoryFetch)
	mux.HandleFunc("POST /v1/parity/deb", p.HandleDeb)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.deps.Peer = httpPeer{srv.URL}
}

func lastEvent(t *testing.T, a *testParity) event {
	t.Helper()
	evs := a.lastEvents(1)
	if len(evs) != 1 {
		t.Fatalf("last event: %v", evs)
	}
	return evs[0]
}
