package e2e

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The verdict is watched across the whole lab suite: before each test's
// lab goes down, both nodes' ready-changed events are read, and every
// change from READY to anything else must fall inside a window in which
// that test injected a fault (declareFault, during). A lab that never was
// READY (most tests: the lab is built with a driver gap and no canaries)
// has no such change to explain.

type faultWindow struct {
	from, to time.Time
	what     string
}

// verdictWindows holds, by test name, the windows of its injected faults.
var verdictWindows struct {
	mu sync.Mutex
	m  map[string][]faultWindow
}

// declareFault records that t injected a fault between from and to (to:
// when the verdict was seen back, or the fault removed and settled).
func declareFault(t *testing.T, what string, from, to time.Time) {
	verdictWindows.mu.Lock()
	defer verdictWindows.mu.Unlock()
	if verdictWindows.m == nil {
		verdictWindows.m = map[string][]faultWindow{}
	}
	name := strings.SplitN(t.Name(), "/", 2)[0]
	verdictWindows.m[name] = append(verdictWindows.m[name], faultWindow{from, to, what})
}

// during runs f, a fault and its repair (f returns when the verdict is
// back), as a declared window.
func during(t *testing.T, what string, f func()) {
	from := time.Now()
	defer func() { declareFault(t, what, from, time.Now()) }()
	f()
}

// labDown audits the verdict of the lab's nodes (auditVerdict) and takes
// the lab down: every test's cleanup.
func labDown(t *testing.T) {
	auditVerdict(t)
	sentryErr("lab", "down")
}

// auditVerdict fails t for each change of a node's verdict from READY to
// NOT READY or UNKNOWN outside t's declared fault windows.
func auditVerdict(t *testing.T) {
	verdictWindows.mu.Lock()
	windows := verdictWindows.m[strings.SplitN(t.Name(), "/", 2)[0]]
	verdictWindows.mu.Unlock()
	for _, set := range []string{"P", "S"} {
		out, err := sentryErr("lab", "exec", set, "--", "sentry", "events", "--kind", "ready-changed", "-n", "2000", "--json")
		if err != nil {
			continue // the node is down, or its agent not initialized: no verdict
		}
		var evs []event
		if json.Unmarshal([]byte(out), &evs) != nil {
			continue
		}
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
		ready, alarms, changes := false, 0, 0
		for _, e := range evs {
			now := strings.HasPrefix(e.Message, "READY")
			if ready && !now {
				changes++
				inside := false
				for _, w := range windows {
					inside = inside || (!e.Time.Before(w.from) && !e.Time.After(w.to))
				}
				if !inside {
					alarms++
					t.Errorf("false alarm on %s: %q at %s, outside every fault this test injected", set, e.Message, e.Time.Format(time.TimeOnly))
				}
			}
			ready = now
		}
		if changes > 0 || alarms > 0 {
			figure(t, "verdict watch on %s: %d change(s) away from READY, all inside the %d fault window(s) declared; %d false alarm(s)", set, changes, len(windows), alarms)
		}
	}
}
