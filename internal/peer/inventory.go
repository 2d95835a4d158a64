package peer

import (
	"fmt"

	"github.com/sentryha/sentry/synchronizer/inventory"
)

// Message types of package parity (POST /v1/inventory/fetch).
const (
	TypeInventoryRequest = "inventory-request"
	TypeInventory        = "inventory"
)

// InventoryRequest asks the peer for its inventory. Modaliases are the
// asking node's PCI devices: the peer keeps, of its module aliases, those
// that match them or its own devices (a whole modules.alias is megabytes).
type InventoryRequest struct {
	Modaliases []string `json:"modaliases"`
}

// InventoryReply carries the peer's last good inventory (nil when it has
// none), reduced as InventoryRequest says, and why the newest attempt to
// take one failed, if it did.
type InventoryReply struct {
	Inventory *inventory.Inventory `json:"inventory,omitempty"`
	Error     string               `json:"error,omitempty"`
}

// InventoryRequest returns the body of an inventory request.
func (e *Envelope) InventoryRequest() (*InventoryRequest, error) {
	var r InventoryRequest
	if err := e.body(TypeInventoryRequest, &r); err != nil {
		return nil, err
	}
	if len(r.Modaliases) > 4096 {
		return nil, fmt.Errorf("%w: %d modaliases (at most 4096)", ErrMalformed, len(r.Modaliases))
	}
	for _, m := range r.Modaliases {
		if len(m) > 256 {
			return nil, fmt.Errorf("%w: modalias longer than 256 bytes", ErrMalformed)
		}
	}
	return &r, nil
}

// Inventory returns the body of an inventory message.
func (e *Envelope) Inventory() (*InventoryReply, error) {
	var r InventoryReply
	if err := e.body(TypeInventory, &r); err != nil {
		return nil, err
	}
	if len(r.Error) > 4096 {
		return nil, fmt.Errorf("%w: inventory error longer than 4096 bytes", ErrMalformed)
	}
	if inv := r.Inventory; inv != nil {
		if inv.SchemaVersion < 1 || inv.SchemaVersion > inventory.SchemaVersion {
			return nil, fmt.Errorf("%w: inventory schema %d, this agent reads 1 to %d", ErrMalformed, inv.SchemaVersion, inventory.SchemaVersion)
		}
		if inv.Node != "" && !nameRe.MatchString(inv.Node) {
			return nil, fmt.Errorf("%w: inventory of node %.70q", ErrMalformed, inv.Node)
		}
	}
	return &r, nil
}
