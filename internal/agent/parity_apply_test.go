package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/apttrust"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
	"github.com/sentryha/sentry/synchronizer/inventory"
)

// applyAgent is parityAgent with its state folder and event store in a
// temporary folder, as installDebs and recordAction need.
func applyAgent(t *testing.T, name, role, peerName, machine string) *Agent {
	t.Helper()
	a, _ := parityAgent(t, name, role, peerName, machine, nil, nil)
	cfg := *a.conf()
	cfg.Node.StateDir = t.TempDir()
	a.cfg.Store(&cfg)
	st, err := store.Open(filepath.Join(cfg.Node.StateDir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.store = st
	return a
}

// linkPeers serves p's peer API over mutual TLS under a new cluster CA,
// and points s at it, as a paired secondary calls its primary.
func linkPeers(t *testing.T, p, s *Agent) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("test-cluster", "test", now)
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string) *pki.Node {
		key, err := pki.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.SignKey(key, name, now)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "pki")
		if err := pki.Save(dir, ca.Cert, nil, cert, key); err != nil {
			t.Fatal(err)
		}
		n, err := pki.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p.node, s.node = node(p.cluster.NodeName), node(s.cluster.NodeName)
	srv := httptest.NewUnstartedServer(p.lnk().Handler())
	srv.TLS = p.node.ServerTLS()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.cluster.PeerAddress = srv.Listener.Addr().String()
}

func lastEvent(t *testing.T, a *Agent) store.Event {
	t.Helper()
	evs, err := a.store.LastEvents(1)
	if err != nil || len(evs) != 1 {
		t.Fatalf("last event: %v %v", evs, err)
	}
	return evs[0]
}

// Issue 13, defect 6: a package neither node has. The apply's error says
// the peer's answer and this node's once each; before, the sentence "no
// .deb of ... in /var/cache/apt/archives or a local apt repository" came
// twice, once from each node.
func TestApplyErrorSaysEachSentenceOnce(t *testing.T) {
	f := newFetchFixture(t)
	p := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	linkPeers(t, p, s)

	d := DebRequest{Name: "hello", Arch: "all", Version: "2.0"}
	res := &ApplyResult{Actions: []ApplyAction{{Action: "install", Target: d.String()}}}
	s.installDebs(context.Background(), res, []DebRequest{d}, map[DebRequest]bool{d: true}, nil)

	want := "hello:all=2.0 not installed: the peer has no file for it: " +
		"no .deb of hello:all=2.0 in " + f.cache + " or a local apt repository; " +
		"package hello version 2.0: `" + AptGetCmd + " download hello=2.0` failed (exit status 100): E: Version '2.0' for 'hello' was not found; " +
		"this node has none either"
	if res.Error != want {
		t.Fatalf("the apply's error:\n got %s\nwant %s", res.Error, want)
	}
	if n := strings.Count(res.Error, "or a local apt repository"); n != 1 {
		t.Errorf("the error says %d times that a node has no .deb", n)
	}
	act := res.Actions[0]
	if act.Error != strings.TrimPrefix(want, "hello:all=2.0 not installed: ") {
		t.Errorf("the action's error: %s", act.Error)
	}
	if ev := lastEvent(t, s); ev.Kind != "parity-apply" || ev.Message != "install hello:all=2.0 FAILED: "+act.Error {
		t.Errorf("event %s: %s", ev.Kind, ev.Message)
	}
	// P fetched it for S (apt-get download, the name alone for an "all"
	// package); S, a secondary, fetches nothing.
	if runs := f.runs(); len(runs) != 1 || strings.Join(runs[0][1:], " ") != "download hello=2.0" {
		t.Errorf("apt-get runs %q", runs)
	}
}

// Issue 13, defect 6: apt is asked for an Architecture: all package by its
// name alone (apt-get download hello=1.0), for the others with the
// architecture.
func TestFetchDebAptArgument(t *testing.T) {
	f := newFetchFixture(t)
	for _, c := range []struct {
		d    DebRequest
		want string
	}{
		{DebRequest{Name: "hello", Arch: "all", Version: "1.0"}, "hello=1.0"},
		{DebRequest{Name: "hello", Arch: "amd64", Version: "1:1.0-2"}, "hello:amd64=1:1.0-2"},
	} {
		os.Remove(f.log)
		_, cleanup, cmd, _, _ := fetchDeb(context.Background(), c.d)
		if cleanup != nil {
			cleanup()
		}
		if runs := f.runs(); len(runs) != 1 || strings.Join(runs[0][1:], " ") != "download "+c.want || cmd != AptGetCmd+" download "+c.want {
			t.Errorf("%s: apt-get runs %q (command %q), want download %s", c.d, runs, cmd, c.want)
		}
		if got := inventory.AptArg(c.d.Name, c.d.Arch, c.d.Version); got != c.want {
			t.Errorf("inventory.AptArg(%s) = %s, want %s", c.d, got, c.want)
		}
	}
}

// Issue 13, defect 6: a hold or unhold that worked is recorded as done,
// not "done (not fetched yet)"; an install says what vouched for its file.
func TestRecordActionDone(t *testing.T) {
	a := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	for _, c := range []struct {
		act  ApplyAction
		want string
	}{
		{ApplyAction{Action: "hold", Target: "postgresql-15", Command: "apt-mark hold postgresql-15"}, "hold postgresql-15 done"},
		{ApplyAction{Action: "unhold", Target: "htop", Command: "apt-mark unhold htop"}, "unhold htop done"},
		{ApplyAction{Action: "add-to-initramfs", Target: "nvme"}, "add-to-initramfs nvme done"},
		{ApplyAction{Action: "install", Target: "hello:all=1.0", Trusted: "signed index /srv/repo/InRelease"}, "install hello:all=1.0 done (signed index /srv/repo/InRelease)"},
	} {
		a.recordAction(&c.act, nil)
		if ev := lastEvent(t, a); ev.Kind != "parity-apply" || ev.Message != c.want {
			t.Errorf("recorded %q, want %q", ev.Message, c.want)
		}
	}
	act := ApplyAction{Action: "hold", Target: "nosuch", Command: "apt-mark hold nosuch"}
	a.recordAction(&act, errors.New("exit status 100"))
	if ev := lastEvent(t, a); ev.Message != "hold nosuch FAILED: exit status 100" {
		t.Errorf("a failed hold recorded as %q", ev.Message)
	}
}

// Issue 13, defect 8: apt sources that cannot be read are reported, with
// the file and the line, where the local repositories would have counted:
// a .deb not found, a .deb refused, and the index's errors.
func TestAptSourcesErrorReported(t *testing.T) {
	f := newFetchFixture(t)
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	bad := filepath.Join(f.etc, "sources.list.d", "bad.list")
	os.WriteFile(bad, []byte("# a comment\ndeb [arch=amd64 http://deb.example.invalid/debian bookworm main\n"), 0o644)
	say := "the local apt repositories are not known: corrupt apt sources: " + bad + ":2: options not closed with ]"

	_, errs := s.aptTrust().SignedIndex()
	var found bool
	for _, e := range errs {
		found = found || (errors.Is(e, apttrust.ErrSources) && e.Error() == say)
	}
	if !found {
		t.Errorf("SignedIndex errors %v, want %q", errs, say)
	}
	_, err := s.locateDeb(DebRequest{Name: "hello", Arch: "all", Version: "3.0"})
	if want := "no .deb of hello:all=3.0 in " + f.cache + " or a local apt repository (" + say + ")"; err == nil || err.Error() != want {
		t.Errorf("locateDeb: %v\nwant %s", err, want)
	}

	// A file in the cache that no signed index lists: the refusal says
	// that the local repositories were not read.
	copyFile(t, filepath.Join(filepath.Dir(f.signed), "other_hello_1.0_all.deb"), filepath.Join(f.cache, "hello_1.0_all.deb"))
	d := DebRequest{Name: "hello", Arch: "all", Version: "1.0"}
	res := &ApplyResult{Actions: []ApplyAction{{Action: "install", Target: d.String()}}}
	s.installDebs(context.Background(), res, []DebRequest{d}, nil, nil)
	if !strings.Contains(res.Error, "is in no signed apt index of this node") || !strings.HasSuffix(res.Error, "("+say+")") {
		t.Errorf("the refusal: %s", res.Error)
	}
}

// Issue 13, defect 8: appendLine leaves a file it could not read as it is
// (the line may be in it; its last line may have no newline).
func TestAppendLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modules")
	if err := appendLine(path, "nvme"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("# modules\nahci"), 0o644)
	for i := 0; i < 2; i++ {
		if err := appendLine(path, "nvme"); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "# modules\nahci\nnvme\n" {
		t.Fatalf("after appending nvme twice: %q", b)
	}

	old := readFile
	t.Cleanup(func() { readFile = old })
	readFile = func(name string) ([]byte, error) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EIO}
	}
	err := appendLine(path, "megaraid_sas")
	if want := fmt.Sprintf("read %s: input/output error: the file is left as it is", path); err == nil || err.Error() != want {
		t.Errorf("appendLine of an unreadable file: %v, want %s", err, want)
	}
	if b, _ := os.ReadFile(path); string(b) != "# modules\nahci\nnvme\n" {
		t.Errorf("an unreadable file was changed: %q", b)
	}
}

// Issue 13, defect 6: holds and unholds carried out (apt-mark) are
// recorded as done; one that fails is the action's failure (not shown as
// done), with what apt-mark said, and stops the rest.
func TestApplyMarks(t *testing.T) {
	a := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	dir := t.TempDir()
	log := filepath.Join(dir, "apt-mark.log")
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
case "$2" in
nosuch) echo "E: Unable to locate package nosuch" >&2; exit 100 ;;
esac
echo "$2 set to $1."
`, log)
	old := AptMarkCmd
	t.Cleanup(func() { AptMarkCmd = old })
	AptMarkCmd = filepath.Join(dir, "apt-mark")
	if err := os.WriteFile(AptMarkCmd, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	res := &ApplyResult{Actions: []ApplyAction{
		{Action: "install", Target: "hello:all=1.0"}, // done before, by installDebs
		{Action: "hold", Target: "postgresql-15"},
		{Action: "unhold", Target: "htop"},
		{Action: "unhold", Target: "nosuch"},
		{Action: "hold", Target: "never"},
	}}
	a.applyMarks(context.Background(), res)

	evs, err := a.store.LastEvents(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Message)
	}
	want := []string{"hold postgresql-15 done", "unhold htop done",
		"unhold nosuch FAILED: exit status 100: E: Unable to locate package nosuch"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Actions[1].Error != "" || res.Actions[2].Error != "" || res.Actions[1].Output != "postgresql-15 set to hold.\n" {
		t.Errorf("the holds that worked: %+v %+v", res.Actions[1], res.Actions[2])
	}
	if res.Actions[3].Error != "exit status 100: E: Unable to locate package nosuch" ||
		res.Error != "unhold nosuch failed: exit status 100: E: Unable to locate package nosuch" {
		t.Errorf("the failed unhold: %q; the apply's error: %q", res.Actions[3].Error, res.Error)
	}
	if b, _ := os.ReadFile(log); string(b) != "hold postgresql-15\nunhold htop\nunhold nosuch\n" {
		t.Errorf("apt-mark runs:\n%s", b)
	}
}

// installed is an installed package of an inventory.
func installed(name, version string) inventory.Package {
	return inventory.Package{Name: name, Arch: "all", Version: version, Status: "install ok installed"}
}

// Issue 20, finding 9: a downgrade (marked in the plan, or a fix's
// package older than the one installed here) is refused at apply unless
// the operator allows it: nothing is changed, and each refused install
// says why. Before, the plan's downgrade was installed like any package.
func TestApplyDowngrade(t *testing.T) {
	newFetchFixture(t)
	s := applyAgent(t, "node-s", stamp.RoleSecondary, "node-p", machineB)
	now := time.Now()
	self := &inventory.Inventory{Node: "node-s", Taken: now, Packages: []inventory.Package{installed("hello", "2.0"), installed("tree", "1.0")}}
	peerInv := &inventory.Inventory{Node: "node-p", Taken: now, Packages: []inventory.Package{installed("hello", "1.0"), installed("tree", "1.1")}}
	s.parity.self, s.parity.peer = self, peerInv
	rep := &ParityReport{Node: "node-s", Role: stamp.RoleSecondary, Self: summary(self, ""), Peer: summary(peerInv, ""),
		Plan: inventory.Plan(peerInv, self, nil, nil)}
	ctx := context.Background()

	// The dry run shows it, and exits well.
	res, ran, err := s.applyReport(ctx, rep, ApplyRequest{})
	if err != nil || ran || res.Error != "" || len(res.Actions) != 2 {
		t.Fatalf("dry run: %+v, ran %v, %v", res, ran, err)
	}
	refusal := "a downgrade from 2.0 (installed), refused without --allow-downgrade"
	if a := res.Actions[0]; a.Target != "hello:all=1.0" || a.Downgrade != "2.0" || a.Error != refusal {
		t.Errorf("dry run, the downgrade: %+v", a)
	}
	if a := res.Actions[1]; a.Target != "tree:all=1.1" || a.Downgrade != "" || a.Error != "" {
		t.Errorf("dry run, the upgrade: %+v", a)
	}

	// Without the flag: refused, nothing done (not the upgrade either).
	res, ran, err = s.applyReport(ctx, rep, ApplyRequest{Yes: true})
	want := "hello:all=1.0 is older than the installed 2.0: a downgrade is installed only with `sentry parity apply --allow-downgrade`; nothing was changed"
	if err != nil || ran || res.Error != want {
		t.Fatalf("apply without --allow-downgrade: error %q, ran %v, %v\nwant %s", res.Error, ran, err, want)
	}
	if res.Actions[1].Error != "" || res.Actions[1].Source != "" {
		t.Errorf("the upgrade was tried: %+v", res.Actions[1])
	}
	if ev := lastEvent(t, s); ev.Message != "install hello:all=1.0 FAILED: "+refusal {
		t.Errorf("event %q", ev.Message)
	}

	// With it: the packages are fetched and checked as any (here neither
	// node has the file, so it stops there, before dpkg).
	res, ran, err = s.applyReport(ctx, rep, ApplyRequest{Yes: true, AllowDowngrade: true})
	if err != nil || !ran || strings.Contains(res.Error, "downgrade") || !strings.HasPrefix(res.Error, "hello:all=1.0 not installed: this node has no peer yet") {
		t.Fatalf("apply with --allow-downgrade: error %q, ran %v, %v", res.Error, ran, err)
	}
	if a := res.Actions[0]; a.Downgrade != "2.0" || strings.Contains(a.Error, "downgrade") {
		t.Errorf("the allowed downgrade: %+v", a)
	}

	// A fix's package older than the one installed here (the peer's
	// version of it, on the primary): refused too.
	p := applyAgent(t, "node-p", stamp.RolePrimary, "node-s", machineA)
	pSelf := &inventory.Inventory{Node: "node-p", Taken: now, Packages: []inventory.Package{installed("firmware-x", "20240101")}}
	pPeer := &inventory.Inventory{Node: "node-s", Taken: now, Packages: []inventory.Package{installed("firmware-x", "20230101")}}
	p.parity.self, p.parity.peer = pSelf, pPeer
	rep = &ParityReport{Node: "node-p", Role: stamp.RolePrimary, Self: summary(pSelf, ""), Peer: summary(pPeer, ""),
		Plan: inventory.ParityPlan{DiskSetFixes: []inventory.DiskSetFix{{DiskSet: "P", Action: "install-firmware", Package: "firmware-x", Firmware: "x.bin"}}}}
	res, _, _ = p.applyReport(ctx, rep, ApplyRequest{Yes: true})
	if !strings.HasPrefix(res.Error, "firmware-x:all=20230101 is older than the installed 20240101") {
		t.Errorf("a fix's downgrade: %q", res.Error)
	}
}
