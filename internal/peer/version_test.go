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
	// An agent that speaks protocol 1 (an older release).
	old := Speaking(1)
	if _, err := old.Decode(hello); err != nil {
		t.Fatalf("a protocol-1 agent refuses a newer agent's hello: %v", err)
	}
	if _, err := old.Decode(inv); !errors.Is(err, ErrVersion) {
		t.Fatalf("a protocol-1 agent took an inventory request: %v", err)
	}
	if _, err := old.Encode(TypeInventory, "node-s", InventoryReply{Error: "x"}); !errors.Is(err, ErrVersion) {
		t.Fatalf("a protocol-1 agent sent an inventory: %v", err)
	}
	// Protocol 2 (release aa90d47) reads inventories, not the messages of
	// the configuration and package fetches.
	v2 := Speaking(2)
	if _, err := v2.Decode(inv); err != nil {
		t.Fatalf("a protocol-2 agent refuses an inventory request: %v", err)
	}
	fetch, err := Encode(TypeConfigFetch, "node-s", ConfigFetch{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Decode(fetch); !errors.Is(err, ErrVersion) {
		t.Fatalf("a protocol-2 agent took a config-fetch message: %v", err)
	}
	if got := Speaking(9).Version(); got != ProtocolVersion {
		t.Errorf("Speaking(9) speaks %d, want %d", got, ProtocolVersion)
	}
}
