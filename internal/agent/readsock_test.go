package agent

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/agentclient"
)

// The agent serves its read-only socket next to agent.socket (the
// default): the state, the verdict and the events, and refuses what acts
// or what only root may see with the not-root error. Without a group
// sentry on the machine it says once that the socket serves root only
// (the test's own user counts as root, as on the root-only socket).
func TestReadOnlySocket(t *testing.T) {
	n := startNode(t, "node-p")
	read := filepath.Join(n.dir, "run", "agent-read.sock")
	fi, err := os.Stat(read)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 && m != 0o660 {
		t.Errorf("%s: mode %v", read, m)
	}
	ctx := context.Background()
	c := agentclient.New(read, agentclient.Sudo("sentry promote"))
	if st, err := c.Status(ctx); err != nil || len(st.Nodes) == 0 || st.Nodes[0].Name != "node-p" {
		t.Errorf("status: %+v %v", st, err)
	}
	if _, err := c.Ready(ctx); err != nil {
		t.Errorf("ready: %v", err)
	}
	if _, err := c.Events(ctx, 5); err != nil {
		t.Errorf("events: %v", err)
	}
	if _, err := c.FailoverHistory(ctx); err != nil {
		t.Errorf("failover history: %v", err)
	}
	if _, err := c.Promote(ctx); !errors.Is(err, agentclient.ErrNeedRoot) || !strings.Contains(err.Error(), "(sudo sentry promote)") {
		t.Errorf("promote: %v, want the not-root error naming sudo sentry promote", err)
	}
	if err := c.Reload(ctx); !errors.Is(err, agentclient.ErrNeedRoot) {
		t.Errorf("reload: %v, want the not-root error", err)
	}
	if _, err := c.ConfigShow(ctx, "HEAD", "/etc/hosts", ""); !errors.Is(err, agentclient.ErrNeedRoot) {
		t.Errorf("config show: %v, want the not-root error", err)
	}
	// The root-only socket still serves everything.
	if err := n.c.Reload(ctx); err != nil {
		t.Errorf("reload on agent.sock: %v", err)
	}
	if _, err := user.LookupGroup("sentry"); err != nil {
		if got := strings.Count(n.logs.String(), "the read-only socket serves root only"); got != 1 {
			t.Errorf("said %d times that the read-only socket serves root only:\n%s", got, n.logs)
		}
	}
}
