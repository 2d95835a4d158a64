package parity

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// HandleInventoryFetch serves the peer this node's last good inventory,
// its module aliases cut to the two machines' devices (POST
// /v1/inventory/fetch, peer only: the peer server mounts it behind its
// mutual TLS): gzipped when the asker says it reads that, else plain as
// every protocol-2 agent reads it.
func (p *Parity) HandleInventoryFetch(w http.ResponseWriter, r *http.Request) {
	id := p.deps.Self()
	env, err := peer.Read(http.MaxBytesReader(w, r.Body, peer.MaxMessageSize))
	if err != nil {
		p.refuse(w, r, id.Node, http.StatusBadRequest, err)
		return
	}
	req, err := env.InventoryRequest()
	if err != nil {
		p.refuse(w, r, id.Node, http.StatusBadRequest, err)
		return
	}
	var ask inventoryAsk
	if err := json.Unmarshal(env.Body, &ask); err != nil {
		p.refuse(w, r, id.Node, http.StatusBadRequest, err)
		return
	}
	// Devices new to this node: retake, so that the firmware their
	// modules need is known.
	if p.wantModaliases(req.Modaliases) {
		p.takeInventory("the peer's devices")
	}
	p.mu.Lock()
	self, selfErr := p.self, p.selfErr
	p.mu.Unlock()
	var slim *inventory.Inventory
	if self != nil {
		slim = slimInventory(self, append(self.Hardware.Modaliases(), req.Modaliases...))
	} else if selfErr == "" {
		selfErr = "no inventory taken yet"
	}
	b, err := encodeInventoryAnswer(id.Node, slim, selfErr, ask.Gzip)
	if err != nil {
		p.refuse(w, r, id.Node, http.StatusInternalServerError, err)
		return
	}
	if self != nil {
		p.deps.Log.Debug("inventory sent to the peer", "packages", len(self.Packages), "bytes", len(b), "gzip", ask.Gzip)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// refuse answers the peer's request with an error message, and logs it.
func (p *Parity) refuse(w http.ResponseWriter, r *http.Request, node string, code int, err error) {
	p.deps.Log.Warn("refused peer request", "peer", r.RemoteAddr, "path", r.URL.Path, "reason", err.Error())
	peer.Write(w, code, peer.TypeError, node, peer.ErrorBody{Message: err.Error()})
}

// inventoryAsk is the body of an inventory request: peer.InventoryRequest
// and a field that agents without it ignore (a protocol-2 agent ignores
// fields it does not know, so it needs no new protocol version).
type inventoryAsk struct {
	peer.InventoryRequest
	// Gzip: the asker reads the inventory gzipped, in InventoryGzip.
	Gzip bool `json:"accept_gzip,omitempty"`
}

// inventoryAnswer is the body of an inventory message: peer.InventoryReply
// and, for an asker that accepts it, the inventory's JSON gzipped in place
// of Inventory. 30,000 packages are about 3.5 MB of JSON, over the peer
// message limit (1 MiB); gzipped, with base64 around it, 0.5 to 0.7 MB.
type inventoryAnswer struct {
	peer.InventoryReply
	InventoryGzip []byte `json:"inventory_gzip,omitempty"`
}

// encodeInventoryAnswer is the inventory message from node from: inv
// gzipped when gz, else plain. An inventory that does not fit in one
// message is replaced by an error the asker shows, rather than a message
// it must refuse.
func encodeInventoryAnswer(from string, inv *inventory.Inventory, invErr string, gz bool) ([]byte, error) {
	ans := inventoryAnswer{InventoryReply: peer.InventoryReply{Error: invErr}}
	if inv != nil {
		if gz {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			if err := json.NewEncoder(zw).Encode(inv); err != nil {
				return nil, err
			}
			if err := zw.Close(); err != nil {
				return nil, err
			}
			ans.InventoryGzip = buf.Bytes()
		} else {
			ans.Inventory = inv
		}
	}
	b, err := peer.Encode(peer.TypeInventory, from, ans)
	if inv == nil || !errors.Is(err, peer.ErrTooLarge) {
		return b, err
	}
	msg := fmt.Sprintf("the inventory of %s (%d packages) does not fit in a peer message of %d bytes", from, len(inv.Packages), peer.MaxMessageSize)
	if gz {
		msg += fmt.Sprintf(", even gzipped (%d bytes)", len(ans.InventoryGzip))
	} else {
		msg += " unless gzipped: update sentry on the asking node, so that it asks for it gzipped"
	}
	if invErr != "" {
		msg += "; and the newest take failed: " + invErr
	}
	return peer.Encode(peer.TypeInventory, from, peer.InventoryReply{Error: msg})
}

// readInventoryAnswer reads the peer's answer to an inventory request:
// plain, as every protocol-2 agent sends it, or gzipped, then at most
// maxJSON bytes once decompressed (MaxInventoryJSON). A gzipped inventory
// gets the checks the peer package gives a plain one.
func readInventoryAnswer(r io.Reader, maxJSON int) (*peer.InventoryReply, error) {
	env, err := peer.Read(r)
	if err != nil {
		return nil, err
	}
	if env.Type == peer.TypeError {
		eb, _ := env.Error()
		return nil, fmt.Errorf("peer refused: %s", eb.Message)
	}
	rep, err := env.Inventory()
	if err != nil {
		return nil, err
	}
	var ans struct {
		InventoryGzip []byte `json:"inventory_gzip"` // inventoryAnswer's, alone
	}
	if err := json.Unmarshal(env.Body, &ans); err != nil {
		return nil, fmt.Errorf("%w: inventory body: %v", peer.ErrMalformed, err)
	}
	if len(ans.InventoryGzip) == 0 {
		return rep, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(ans.InventoryGzip))
	if err != nil {
		return nil, fmt.Errorf("%w: gzipped inventory: %v", peer.ErrMalformed, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, int64(maxJSON)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: gzipped inventory: %v", peer.ErrMalformed, err)
	case len(data) > maxJSON:
		return nil, fmt.Errorf("%w: gzipped inventory larger than %d bytes once decompressed", peer.ErrMalformed, maxJSON)
	}
	body := append(append([]byte(`{"inventory":`), bytes.TrimSpace(data)...), '}')
	full, err := (&peer.Envelope{Type: peer.TypeInventory, Body: body}).Inventory()
	if err != nil {
		return nil, err
	}
	rep.Inventory = full.Inventory
	return rep, nil
}

// slimInventory is inv for the wire: of each kernel only the aliases that
// match one of modaliases, the modules they name with their dependencies,
// and the firmware those modules name.
func slimInventory(inv *inventory.Inventory, modaliases []string) *inventory.Inventory {
	out := *inv
	out.Kernels = make([]inventory.Kernel, len(inv.Kernels))
	fwKeep := map[string]bool{}
	for i, k := range inv.Kernels {
		sk := k
		sk.Aliases = nil
		want := map[string]bool{}
		for _, al := range k.Aliases {
			for _, m := range modaliases {
				if inventory.Glob(al.Pattern, m) {
					sk.Aliases = append(sk.Aliases, al)
					want[al.Module] = true
					break
				}
			}
		}
		// Dependencies, to any depth.
		for changed := true; changed; {
			changed = false
			for _, m := range k.Modules {
				if want[m.Name] {
					for _, d := range m.Deps {
						if !want[d] {
							want[d], changed = true, true
						}
					}
				}
			}
		}
		sk.Modules = nil
		for _, m := range k.Modules {
			if want[m.Name] {
				sk.Modules = append(sk.Modules, m)
				for _, f := range m.Firmware {
					fwKeep[f], fwKeep[f+".xz"], fwKeep[f+".zst"] = true, true, true
				}
			}
		}
		out.Kernels[i] = sk
	}
	out.Firmware = nil
	for _, f := range inv.Firmware {
		if fwKeep[f] {
			out.Firmware = append(out.Firmware, f)
		}
	}
	out.FirmwarePackages = nil
	for f, pk := range inv.FirmwarePackages {
		if fwKeep[f] {
			if out.FirmwarePackages == nil {
				out.FirmwarePackages = map[string]string{}
			}
			out.FirmwarePackages[f] = pk
		}
	}
	return &out
}

// fetchPeerInventory fetches the peer's inventory. When the peer's devices
// are new to this node, its own inventory is retaken (once) so that it
// knows the firmware their modules need.
func (p *Parity) fetchPeerInventory(ctx context.Context) error {
	id := p.deps.Self()
	p.mu.Lock()
	var mine []string
	if p.self != nil {
		mine = p.self.Hardware.Modaliases()
	}
	// An older agent (protocol 1) has no inventory messages: say so rather
	// than send it what it must refuse.
	var peerProto int
	if p.peerStatus != nil {
		peerProto = p.peerStatus.Protocol
	}
	p.mu.Unlock()
	if need := peer.VersionOf(peer.TypeInventoryRequest); peerProto > 0 && peerProto < need {
		err := fmt.Errorf("the peer's agent speaks peer protocol %d; inventories need %d: update sentry on the peer", peerProto, need)
		p.setPeerErr(err)
		return err
	}
	body, err := peer.Encode(peer.TypeInventoryRequest, id.Node, inventoryAsk{InventoryRequest: peer.InventoryRequest{Modaliases: mine}, Gzip: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, PeerInventoryTimeout)
	defer cancel()
	resp, err := p.post(ctx, "/v1/inventory/fetch", body)
	if err != nil {
		p.setPeerErr(err)
		return err
	}
	defer resp.Body.Close()
	rep, err := readInventoryAnswer(resp.Body, MaxInventoryJSON)
	if err != nil {
		p.setPeerErr(err)
		return err
	}
	p.mu.Lock()
	p.peerErr = ""
	if rep.Error != "" {
		p.peerErr = "the peer's newest inventory failed: " + rep.Error
	}
	if rep.Inventory != nil {
		p.peer = rep.Inventory
	}
	p.mu.Unlock()
	if rep.Inventory != nil && p.wantModaliases(rep.Inventory.Hardware.Modaliases()) {
		p.takeInventory("the peer's devices")
	}
	if rep.Inventory != nil {
		p.saveHardwareProfiles()
	}
	return nil
}

// post sends a JSON request to the peer's API.
func (p *Parity) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	if p.deps.Peer == nil {
		return nil, ErrNoPeer
	}
	return p.deps.Peer.Post(ctx, path, "application/json", bytes.NewReader(body))
}

func (p *Parity) setPeerErr(err error) {
	p.mu.Lock()
	p.peerErr = err.Error()
	p.mu.Unlock()
}
