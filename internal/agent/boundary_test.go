package agent

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentryha/sentry/internal/config"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/modules"
)

// cronNginx is a web-nginx version from a compromised primary: it asks the
// secondary to track /etc/cron.d.
const cronNginx = `schema = 2
name = "web-nginx"
version = "9.0.0"
kind = "web"
description = "asks for cron"
packages = ["nginx"]
tracked = ["/etc/nginx", "/etc/cron.d"]

[[units]]
name = "nginx.service"
action = "reload"
order = 10
paths = ["/etc/nginx"]
`

// boundaryAgent is a secondary (or primary) with its own state folder and
// modules under root, and no store or peer.
func boundaryAgent(t *testing.T, role string) (*Agent, modules.Options) {
	t.Helper()
	root := t.TempDir()
	cfg := config.Default()
	cfg.Node.Name, cfg.Node.StateDir = "node-s", filepath.Join(root, "state")
	os.MkdirAll(cfg.Node.StateDir, 0o700)
	opts := modules.OptionsAt(root)
	a := &Agent{log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		paths: paths{clusterDir: filepath.Join(root, "etc/sentry/cluster"), modules: opts}}
	a.cfg.Store(&cfg)
	db, err := store.Open(filepath.Join(cfg.Node.StateDir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a.store = db
	st := &stamp.Stamp{ClusterID: "c1", ClusterName: "office", DiskSet: "d1", Role: role, Generation: 1, HomeHardware: "mac:1"}
	if err := stamp.WriteStamp(a.statePath(stamp.StampFile), st); err != nil {
		t.Fatal(err)
	}
	a.stamp = st
	f := filepath.Join(root, "web.toml")
	os.WriteFile(f, []byte(cronNginx), 0o644)
	if _, _, err := modules.Install(opts, f); err != nil {
		t.Fatal(err)
	}
	return a, opts
}

// Finding 2 of the security review: a module from the primary widened the
// secondary's tracked roots, so S wrote a cron file. Now S holds back what
// lies beyond its approved boundary until the operator approves it there;
// the primary's own policy is not narrowed.
func TestSecondaryHoldsBackWhatModulesWiden(t *testing.T) {
	a, _ := boundaryAgent(t, stamp.RoleSecondary)
	p, _ := a.policyUnits()
	if slices.Contains(p.Roots, "/etc/cron.d") {
		t.Fatalf("the secondary tracks /etc/cron.d because the primary's module asked: %v", p.Roots)
	}
	if !slices.Contains(p.Roots, "/etc/nginx") {
		t.Fatalf("the secondary lost /etc/nginx: %v", p.Roots)
	}
	if got := a.boundary.list(); !slices.Equal(got, []string{"/etc/cron.d"}) {
		t.Fatalf("pending %v, want [/etc/cron.d]", got)
	}
	if _, err := os.Stat(a.statePath(boundaryName)); err == nil {
		t.Fatal("an approval file exists before any approval")
	}
	evs, _ := a.store.Events(0, 10)
	if len(evs) != 1 || evs[0].Kind != "boundary-pending" {
		t.Fatalf("events: %+v", evs)
	}
	a.policyUnits() // the same pending set is not recorded again
	if evs, _ := a.store.Events(0, 10); len(evs) != 1 {
		t.Fatalf("events after a second look: %+v", evs)
	}

	// Approved on S: tracked from now on, and nothing pending.
	// The link is not started: restartSyncIfPolicyChanged returns at once, no sync runs here.
	res, err := a.ApproveModules()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Approved.Roots, []string{"/etc/cron.d"}) {
		t.Fatalf("approved %+v", res.Approved)
	}
	p, _ = a.policyUnits()
	if !slices.Contains(p.Roots, "/etc/cron.d") || len(a.boundary.list()) != 0 {
		t.Fatalf("after approval: roots %v, pending %v", p.Roots, a.boundary.list())
	}
	// Approving again adds nothing.
	if res, err := a.ApproveModules(); err != nil || !res.Approved.Empty() {
		t.Fatalf("second approval: %+v %v", res, err)
	}
}

func TestPrimaryIsNotNarrowed(t *testing.T) {
	a, _ := boundaryAgent(t, stamp.RolePrimary)
	p, _ := a.policyUnits()
	if !slices.Contains(p.Roots, "/etc/cron.d") || len(a.boundary.list()) != 0 {
		t.Fatalf("primary: roots %v, pending %v", p.Roots, a.boundary.list())
	}
	if _, err := a.ApproveModules(); err == nil {
		t.Fatal("approve on the primary succeeded")
	}
}
