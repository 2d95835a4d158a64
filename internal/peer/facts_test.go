package peer

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestStatusFactsBounded: the readiness fields cross whole when within
// bounds, and a status with too many or too long of them is refused.
func TestStatusFactsBounded(t *testing.T) {
	ok := NodeStatus{Name: "node-p", ConfigHeadAt: time.Now(), Modules: map[string]string{"web-nginx": "1.0.0"},
		Facts: &Facts{At: time.Now(), RAID: []RAIDArray{{Name: "md0", Level: "raid1", Members: 2, Up: 2}},
			Loader: &Loader{Mode: "uefi", ESPs: []ESP{{Device: "/dev/sda1", Fallback: true}}}, Network: &Network{Method: "ifupdown"}},
		Verdict: &Verdict{Verdict: "NOT READY", At: time.Now(), Reasons: []string{"peer.reachable: no contact for 2 min"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	many := map[string]string{}
	for i := 0; i <= MaxModules; i++ {
		many[strings.Repeat("m", i%100+1)+string(rune('a'+i%26))+strings.Repeat("x", i/26)] = "1"
	}
	for name, s := range map[string]NodeStatus{
		"too many modules":  {Name: "node-p", Modules: many},
		"long version":      {Name: "node-p", Modules: map[string]string{"a": strings.Repeat("1", 129)}},
		"too many arrays":   {Name: "node-p", Facts: &Facts{RAID: make([]RAIDArray, 65)}},
		"long array name":   {Name: "node-p", Facts: &Facts{RAID: []RAIDArray{{Name: strings.Repeat("m", 600)}}}},
		"too many ESPs":     {Name: "node-p", Facts: &Facts{Loader: &Loader{ESPs: make([]ESP, 65)}}},
		"long network text": {Name: "node-p", Facts: &Facts{Network: &Network{Detail: strings.Repeat("d", 5000)}}},
		"unknown verdict":   {Name: "node-p", Verdict: &Verdict{Verdict: "MAYBE"}},
		"too many reasons":  {Name: "node-p", Verdict: &Verdict{Verdict: "NOT READY", Reasons: make([]string, MaxVerdictReasons+1)}},
		"long reason":       {Name: "node-p", Verdict: &Verdict{Verdict: "NOT READY", Reasons: []string{strings.Repeat("r", 4097)}}},
	} {
		if err := s.Validate(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
