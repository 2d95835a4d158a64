package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() State {
	seen := time.Date(2026, 12, 2, 21, 0, 0, 0, time.UTC)
	s := State{Initialized: true, ClusterID: "c1", ClusterName: "office",
		Nodes: []Node{
			{Name: "node-p", Self: true, Role: "primary", Hardware: "dmi:uuid=a", DiskSet: "d1", Generation: 2, AgentVersion: "v1",
				Address: "10.0.0.1:7443", Reachable: true, ConfigHead: "abc123", Verify: "11/12 green", VerifyRed: []string{"web"}, Boot: "primary"},
			{Name: "node-s", Role: "secondary", Hardware: "dmi:uuid=b", DiskSet: "d2", Generation: 1, AgentVersion: "v1",
				Address: "10.0.0.2:7443", Reachable: true, LastContact: &seen, ConfigHead: "abc123", ConfigApplied: "abc123",
				ConfigDrift: 2, Verify: "12/12 green", Boot: "secondary"},
		},
		Parity: &Parity{Self: Inventory{Node: "node-p", Taken: seen, Packages: 420, Kernel: "6.12.0"},
			Peer: Inventory{Node: "node-s", Taken: seen, Packages: 419, Kernel: "6.12.0"}},
		Boot: &Boot{Decision: "primary", Reason: "home machine", Hardware: "dmi:uuid=a", HomeHardware: "dmi:uuid=a"},
	}
	s.Summarize()
	return s
}

// The schema of version 1, field by field: a change to this golden file
// is a change to what scripts and the TUI read (add fields; rename none).
func TestStateSchemaV1(t *testing.T) {
	b, err := json.MarshalIndent(sample(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden := filepath.Join("testdata", "state-v1.json")
	if *update {
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("state JSON changed (go test -update to accept):\n%s", b)
	}
	// Read back into today's type: nothing lost.
	var back State
	if err := json.Unmarshal(want, &back); err != nil || back.Version != 1 || len(back.Nodes) != 2 || back.Sync == nil || !back.Sync.InStep {
		t.Errorf("read back: %+v %v", back, err)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name   string
		nodes  []Node
		link   bool
		sync   *Sync
		redSum int
	}{
		{"not initialized", []Node{{Name: "n", Self: true}}, false, nil, 0},
		{"primary alone", []Node{{Name: "p", Self: true, Role: "primary", ConfigHead: "h1"}}, false, &Sync{Head: "h1"}, 0},
		{"failed apply", []Node{
			{Name: "p", Self: true, Role: "primary", ConfigHead: "h2", VerifyRed: []string{"a", "b"}},
			{Name: "s", Role: "secondary", ConfigHead: "h2", ConfigApplied: "h1", ConfigFailed: "h2", ConfigError: "boom", VerifyRed: []string{"c"}}},
			true, &Sync{Head: "h2", Applied: "h1", Failed: "h2", Error: "boom"}, 3},
		{"secondary's view, primary unknown", []Node{
			{Name: "s", Self: true, Role: "secondary", ConfigHead: "h1", ConfigApplied: "h1"},
			{Name: "p", Error: "no contact"}},
			true, &Sync{Head: "h1", Applied: "h1", InStep: true}, 0},
	} {
		s := State{Nodes: tc.nodes}
		s.Summarize()
		if s.Version != Version || (s.Link != nil) != tc.link {
			t.Errorf("%s: version %d, link %+v", tc.name, s.Version, s.Link)
		}
		got, _ := json.Marshal(s.Sync)
		want, _ := json.Marshal(tc.sync)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: sync %s, want %s", tc.name, got, want)
		}
		if red := 0; s.Verify != nil {
			red = s.Verify.Red
			if red != tc.redSum {
				t.Errorf("%s: %d red", tc.name, red)
			}
		} else if tc.redSum != 0 {
			t.Errorf("%s: no verify summary", tc.name)
		}
	}
}
