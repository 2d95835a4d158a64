package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/agent/localsock"
)

// fakeReader serves, at path, what an agent's read-only socket serves:
// localsock.ReadOnly over a status and an empty configuration log. It
// lets anyone connect (mode 0777): the credential check is localsock's,
// tested there.
func fakeReader(t *testing.T, path string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"version":1,"initialized":false,"nodes":[{"name":"node-t","self":true,"role":"","hardware":"","disk_set":"","generation":0,"agent_version":"test","reachable":true}]}`)
	})
	mux.HandleFunc("GET /v1/config/log", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[]`)
	})
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o777)
	srv := &http.Server{Handler: localsock.ReadOnly(mux), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
}

// A refusal of the read-only socket (403) is the not-root error: exit 4,
// the message naming the command to run with sudo; what it serves works.
func TestCLIReadOnlyRefusal(t *testing.T) {
	f := newCLIFixture(t)
	fakeReader(t, f.path("$DIR/run/reader.sock"))
	cfg := f.path("$DIR/reader.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "[node]\nname = \"node-t\"\nstate_dir = %q\n[agent]\nsocket = %q\nread_socket = \"\"\n",
		f.path("$DIR/state"), f.path("$DIR/run/reader.sock")), 0o644); err != nil {
		t.Fatal(err)
	}
	const refused = "sentry: this command must run as root: read-only: this needs root (sudo sentry "
	for _, c := range []cliCase{
		{[]string{"config", "rollback", "HEAD~1", "--yes", "--config", cfg}, 4, refused + "config rollback)", false},
		{[]string{"config", "show", "HEAD:/etc/hosts", "--config", cfg}, 4, refused + "config show)", false},
		{[]string{"config", "drift", "--json", "--config", cfg}, 4, strings.TrimPrefix(refused, "sentry: ") + "config drift)", false},
		{[]string{"parity", "apply", "--yes", "--config", cfg}, 4, refused + "parity apply)", false},
		{[]string{"sync", "--config", cfg}, 4, refused + "sync)", false},
		{[]string{"token", "--config", cfg}, 4, refused + "token)", false},
		{[]string{"verify", "--debug", "web", "--config", cfg}, 4, refused + "verify)", false},
		{[]string{"status", "--json", "--config", cfg}, 0, "{", true},
	} {
		f.check(t, c, f.run(strings.NewReader(""), c.args...))
	}
}
