package peer

import (
	"errors"
	"testing"
	"time"
)

// TestVersionByType: every message goes at the version that introduced its
// type, so an agent of protocol 1 reads hellos from a newer one, and
// refuses only the types it cannot know, by version.
func TestVersionByType(t *testing.T) {
	hello, err := Encode(TypeHello, "node-p", NodeStatus{Name: "node-p", Protocol: ProtocolVersion, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Encode(TypeInventoryRequest, "node-p", InventoryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		b    []byte
		want int
	}{{hello, 1}, {inv, 2}} {
		env, err := Decode(c.b)
		if err != nil {
			t.Fatal(err)
		}
		if env.Version != c.want {
			t.Errorf("%s sent at version %d, want %d", env.Type, env.Version, c.want)
		}
	}
	// An agent built to speak protocol 1 (an older release).
	old := ProtocolVersion
	ProtocolVersion = 1
	defer func() { ProtocolVersion = old }()
	if _, err := Decode(hello); err != nil {
		t.Fatalf("a protocol-1 agent refuses a newer agent's hello: %v", err)
	}
	if _, err := Decode(inv); !errors.Is(err, ErrVersion) {
		t.Fatalf("a protocol-1 agent took an inventory request: %v", err)
	}
	if _, err := Encode(TypeInventory, "node-s", InventoryReply{Error: "x"}); !errors.Is(err, ErrVersion) {
		t.Fatalf("a protocol-1 agent sent an inventory: %v", err)
	}
}
