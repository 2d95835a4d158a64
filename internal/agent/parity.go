package agent

import (
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/sentryha/sentry/internal/agent/link"
	"github.com/sentryha/sentry/internal/agent/parity"
	"github.com/sentryha/sentry/internal/peer"
)

// newParity makes the parity component (package parity: inventories,
// hardware profiles, compat, plan and apply) from the agent's paths and
// configuration. Its state folder is the agent's (state_dir changes only
// on restart).
func newParity(a *Agent) *parity.Parity {
	opts := a.paths.parity
	opts.StateDir = a.conf().Node.StateDir
	opts.HardwareDir = a.paths.hardwareDir()
	return parity.New(parity.Deps{
		Log:            a.log,
		Event:          a.event,
		Self:           func() parity.Identity { return parityIdentity(a) },
		Peer:           parityPeer{a},
		ModulePackages: func() map[string][]string { return modulePackages(a) },
	}, opts)
}

// parityIdentity is this node as parity needs to know it.
func parityIdentity(a *Agent) parity.Identity {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := parity.Identity{Node: a.nodeName(), SafeMode: a.safeModeLocked() != ""}
	if a.stamp != nil {
		id.Role = a.stamp.Role
	}
	if a.cluster != nil {
		id.PeerName = a.cluster.PeerName
	}
	if a.hwErr == nil {
		id.MachineID = a.hw.ID
	}
	return id
}

// modulePackages are the packages of each selected module, by name (nil
// when no module set loads).
func modulePackages(a *Agent) map[string][]string {
	set := a.mods().Modules()
	if set == nil {
		return nil
	}
	need := map[string][]string{}
	for _, m := range set.Modules() {
		need[m.Name] = m.Packages
	}
	return need
}

// notePeerStatus tells the components of the peer's status, from a hello
// or a join.
func (a *Agent) notePeerStatus(h *peer.NodeStatus) {
	if a.parity != nil {
		a.parity.NotePeer(h)
	}
}

// parityPeer is the peer client as parity calls it.
type parityPeer struct{ a *Agent }

func (p parityPeer) Post(ctx context.Context, path, contentType string, body io.Reader) (*http.Response, error) {
	resp, err := p.a.lnk().Client().Post(ctx, path, contentType, body)
	if errors.Is(err, link.ErrNoPeer) {
		return nil, parity.ErrNoPeer
	}
	return resp, err
}

func (p parityPeer) FetchDeb(ctx context.Context, d parity.DebRequest) (*peer.Deb, io.ReadCloser, error) {
	deb, f, err := p.a.lnk().Client().FetchDeb(ctx, peer.DebRequest(d), p.a.lnk().PeerProtocol())
	if errors.Is(err, link.ErrNoPeer) {
		return nil, nil, parity.ErrNoPeer
	}
	return deb, f, err
}
