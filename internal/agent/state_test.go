package agent

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/stamp"
)

// GET /v1/status is the versioned state: today's fields, and the
// summaries beside them.
func TestStateVersioned(t *testing.T) {
	a := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	st := a.state()
	if st.Version != 1 || len(st.Nodes) == 0 || st.Boot != nil {
		t.Fatalf("state: %+v", st)
	}
	b, _ := json.Marshal(st)
	for _, f := range []string{`"version":1`, `"initialized":`, `"nodes":[{"name":"node-p","self":true,"role":"primary"`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("status JSON without %s: %s", f, b)
		}
	}
	a.machines.SetIdentityError(errors.New("bad stamp"))
	if st := a.state(); st.Boot == nil || st.Boot.Decision != bootcheck.SafeMode || !strings.Contains(st.Boot.SafeMode, "bad stamp") || st.SafeMode == "" {
		t.Errorf("state in safe mode: %+v %+v", st, st.Boot)
	}
}
