package agentclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentryha/sentry/internal/agent/localsock"
	"github.com/sentryha/sentry/internal/agent/parity"
)

// serveAt serves h on a unix socket at path until the test ends.
func serveAt(t *testing.T, path string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func state(w http.ResponseWriter, r *http.Request) {
	fmt.Fprint(w, `{"version":1,"initialized":false,"nodes":[{"name":"node-r","self":true}]}`)
}

// A refusal of the read-only socket is ErrNeedRoot and names the command
// to run with sudo, also from the requests without a client timeout; any
// other 403 is the agent's message as it is.
func TestReadOnlyRefusalIsNotRoot(t *testing.T) {
	dir := t.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", state)
	sock := filepath.Join(dir, "read.sock")
	serveAt(t, sock, localsock.ReadOnly(mux))
	ctx := context.Background()

	c := New(sock, Sudo("sentry promote"))
	if st, err := c.Status(ctx); err != nil || len(st.Nodes) != 1 || st.Nodes[0].Name != "node-r" {
		t.Errorf("status: %+v %v", st, err)
	}
	_, err := c.Promote(ctx)
	if !errors.Is(err, ErrNeedRoot) || err.Error() != "this command must run as root: read-only: this needs root (sudo sentry promote)" {
		t.Errorf("promote: %v", err)
	}
	if _, err := New(sock, Sudo("sentry parity apply")).ParityApply(ctx, parity.ApplyRequest{}); !errors.Is(err, ErrNeedRoot) || !strings.Contains(err.Error(), "(sudo sentry parity apply)") {
		t.Errorf("parity apply: %v", err)
	}
	if _, err := New(sock).Promote(ctx); !errors.Is(err, ErrNeedRoot) || !strings.HasSuffix(err.Error(), "(sudo sentry ...)") {
		t.Errorf("promote without Sudo: %v", err)
	}

	other := filepath.Join(dir, "other.sock")
	serveAt(t, other, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"something else"}`)
	}))
	if _, err := New(other).Promote(ctx); errors.Is(err, ErrNeedRoot) || err == nil || err.Error() != "something else" {
		t.Errorf("another 403: %v", err)
	}
}

// A user the root-only socket refuses (permission denied) is served on
// the read-only socket; without one, or when it refuses too, the error is
// the not-root one. Root passes any file mode: the test needs another
// user (sentry.TestCLINotRoot runs the CLI as nobody for it).
func TestReadSocketWhenRefused(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root is let in whatever the socket's mode")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "agent.sock")
	serveAt(t, root, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("served on the refused socket") }))
	os.Chmod(root, 0)
	read := filepath.Join(dir, "agent-read.sock")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", state)
	serveAt(t, read, localsock.ReadOnly(mux))
	ctx := context.Background()

	if st, err := New(root, ReadSocket(read)).Status(ctx); err != nil || st.Nodes[0].Name != "node-r" {
		t.Errorf("status through the read-only socket: %+v %v", st, err)
	}
	if _, err := New(root).Status(ctx); !errors.Is(err, ErrNeedRoot) || !strings.Contains(err.Error(), "(the local API is root's only)") {
		t.Errorf("no read-only socket: %v", err)
	}
	os.Chmod(read, 0)
	if _, err := New(root, ReadSocket(read)).Status(ctx); !errors.Is(err, ErrNeedRoot) || !strings.Contains(err.Error(), "its read-only view, "+read+", is group sentry's") {
		t.Errorf("both refuse: %v", err)
	}
	if _, err := New(filepath.Join(dir, "none.sock"), ReadSocket(read)).Status(ctx); !errors.Is(err, ErrNoAgent) {
		t.Errorf("no agent: %v, want ErrNoAgent (no fallback when nothing listens)", err)
	}
}
