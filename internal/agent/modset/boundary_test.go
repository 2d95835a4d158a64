package modset

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sentryha/sentry/internal/config"
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

type event struct{ kind, node, msg string }

// testSet is a secondary's (or primary's) module set with its own state
// folder and modules under root; it records events and approvals.
type testSet struct {
	*Set
	opts      modules.Options
	events    []event
	approved  chan struct{}
	secondary bool
}

func newTestSet(t *testing.T, secondary bool) *testSet {
	t.Helper()
	root := t.TempDir()
	cfg := config.Default()
	cfg.Node.Name, cfg.Node.StateDir = "node-s", filepath.Join(root, "state")
	os.MkdirAll(cfg.Node.StateDir, 0o700)
	ts := &testSet{opts: modules.OptionsAt(root), approved: make(chan struct{}, 4), secondary: secondary}
	ts.Set = New(Deps{
		Conf: func() *config.Config { return &cfg },
		Log:  slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)),
		Event: func(kind, node, msg string, _ map[string]string) {
			ts.events = append(ts.events, event{kind, node, msg})
		},
		Secondary:  func() bool { return ts.secondary },
		Modules:    ts.opts,
		ClusterDir: filepath.Join(root, "etc/sentry/cluster"),
		OnApproved: func() { ts.approved <- struct{}{} },
	})
	f := filepath.Join(root, "web.toml")
	os.WriteFile(f, []byte(cronNginx), 0o644)
	if _, _, err := modules.Install(ts.opts, f); err != nil {
		t.Fatal(err)
	}
	return ts
}

// Finding 2 of the security review: a module from the primary widened the
// secondary's tracked roots, so S wrote a cron file. Now S holds back what
// lies beyond its approved boundary until the operator approves it there;
// the primary's own policy is not narrowed.
func TestSecondaryHoldsBackWhatModulesWiden(t *testing.T) {
	s := newTestSet(t, true)
	p, _ := s.PolicyUnits()
	if slices.Contains(p.Roots, "/etc/cron.d") {
		t.Fatalf("the secondary tracks /etc/cron.d because the primary's module asked: %v", p.Roots)
	}
	if !slices.Contains(p.Roots, "/etc/nginx") {
		t.Fatalf("the secondary lost /etc/nginx: %v", p.Roots)
	}
	if got := s.Pending(); !slices.Equal(got, []string{"/etc/cron.d"}) {
		t.Fatalf("pending %v, want [/etc/cron.d]", got)
	}
	if _, err := os.Stat(s.statePath(BoundaryName)); err == nil {
		t.Fatal("an approval file exists before any approval")
	}
	if len(s.events) != 1 || s.events[0].kind != "boundary-pending" || s.events[0].node != "node-s" {
		t.Fatalf("events: %+v", s.events)
	}
	s.PolicyUnits() // the same pending set is not recorded again
	if len(s.events) != 1 {
		t.Fatalf("events after a second look: %+v", s.events)
	}

	// Approved on S: tracked from now on, and nothing pending.
	res, err := s.Approve()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Approved.Roots, []string{"/etc/cron.d"}) {
		t.Fatalf("approved %+v", res.Approved)
	}
	<-s.approved
	if s.events[len(s.events)-1].kind != "modules-approved" {
		t.Fatalf("events: %+v", s.events)
	}
	p, _ = s.PolicyUnits()
	if !slices.Contains(p.Roots, "/etc/cron.d") || len(s.Pending()) != 0 {
		t.Fatalf("after approval: roots %v, pending %v", p.Roots, s.Pending())
	}
	// Approving again adds nothing, and restarts nothing.
	if res, err := s.Approve(); err != nil || !res.Approved.Empty() {
		t.Fatalf("second approval: %+v %v", res, err)
	}
	if len(s.approved) != 0 {
		t.Fatal("an empty approval restarted the sync")
	}
}

func TestPrimaryIsNotNarrowed(t *testing.T) {
	s := newTestSet(t, false)
	p, _ := s.PolicyUnits()
	if !slices.Contains(p.Roots, "/etc/cron.d") || len(s.Pending()) != 0 {
		t.Fatalf("primary: roots %v, pending %v", p.Roots, s.Pending())
	}
	if _, err := s.Approve(); err == nil {
		t.Fatal("approve on the primary succeeded")
	}
}
