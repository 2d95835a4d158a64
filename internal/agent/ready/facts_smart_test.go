package ready

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sentryha/sentry/internal/disks"
	"github.com/sentryha/sentry/internal/peer"
	"github.com/sentryha/sentry/internal/readiness"
	"github.com/sentryha/sentry/internal/smart"
)

// smartFixtures is a smartctl runner answering with internal/smart's
// testdata: device path -> file, exiting with the status the file records.
type smartFixtures struct {
	mu    sync.Mutex
	files map[string]string
	calls []string
}

func (s *smartFixtures) run(_ context.Context, name string, args ...string) ([]byte, int, error) {
	dev := args[len(args)-1]
	s.mu.Lock()
	s.calls = append(s.calls, name+" "+strings.Join(args, " "))
	s.mu.Unlock()
	file, ok := s.files[dev]
	if !ok {
		return nil, -1, errors.New("no fixture for " + dev)
	}
	b, err := os.ReadFile(filepath.Join("../../smart/testdata", file))
	if err != nil {
		return nil, -1, err
	}
	var doc struct {
		Smartctl struct {
			ExitStatus int `json:"exit_status"`
		} `json:"smartctl"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, -1, err
	}
	return b, doc.Smartctl.ExitStatus, nil
}

// TestFactsSmart: the fixture server's three disks read through a fake
// smartctl: sda healthy, sdb failing, nvme0n1 healthy; the facts cross to
// the peer and the disks check fails on sdb.
func TestFactsSmart(t *testing.T) {
	root := fixtureRoot(t)
	sf := &smartFixtures{files: map[string]string{
		"/dev/sda":     "ata-hdd-passed.json",
		"/dev/sdb":     "ata-hdd-failed.json",
		"/dev/nvme0n1": "nvme-passed.json",
	}}
	o := Options{Mdstat: filepath.Join(root, "missing"), Root: root, MountInfo: filepath.Join(root, "none"), NetRoot: root,
		Smart: smart.Options{Run: sf.run}}
	r := New(Deps{}, o)
	r.RefreshFacts()
	f, _, _ := r.Local()
	if f == nil {
		t.Fatal("no facts")
	}
	type disk struct {
		dev, serial, passed, detail string
	}
	var got []disk
	for _, d := range f.Disks {
		got = append(got, disk{d.Device, d.Serial, passedText(d.Passed), d.Detail})
	}
	want := []disk{ // in internal/disks' natural order
		{"/dev/nvme0n1", "S4EWNX0R123456K", "true", "3% used, 41 °C"},
		{"/dev/sda", "WD-WCC7K4PLX1A2", "true", "34 °C"},
		{"/dev/sdb", "Z1E4K7QX", "false", "3976 reallocated, 48 pending, 48 offline-uncorrectable sectors, failing now: Reallocated_Sector_Ct, 41 °C"},
	}
	if len(got) != len(want) {
		t.Fatalf("disks %+v\nwant %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("disk %d: %+v\n want %+v", i, got[i], want[i])
		}
	}
	if len(sf.calls) != 3 || sf.calls[1] != "smartctl --json=c -H -A -i /dev/sda" {
		t.Errorf("smartctl calls %q", sf.calls)
	}
	if err := (&peer.NodeStatus{Name: "node-p", Facts: f}).Validate(); err != nil {
		t.Fatalf("the facts do not cross: %v", err)
	}

	// Judged: the disks check fails on sdb with its detail, and the
	// evidence is as fresh as the facts.
	self := NodeOf(&peer.NodeStatus{Name: "node-p", Role: "primary", Facts: f}, time.Now())
	if !self.DisksAt.Equal(f.At) || len(self.Disks) != 3 {
		t.Fatalf("node: disks at %v, %d disks", self.DisksAt, len(self.Disks))
	}
	other := &readiness.Node{Name: "node-s", Role: "secondary"}
	x := finding(t, &readiness.Input{Now: time.Now(), Primary: self, Secondary: other}, "disks")
	if x.State != readiness.Fail || !strings.Contains(x.Reason, "node-p /dev/sdb (serial Z1E4K7QX): SMART says FAILED 3976 reallocated") || len(x.Evidence) != 3 {
		t.Errorf("disks: %s %q %+v", x.State, x.Reason, x.Evidence)
	}

	// The same disks healthy: the check passes.
	sf.files["/dev/sdb"] = "ata-hdd-pending.json"
	r.RefreshFacts()
	f, _, _ = r.Local()
	self = NodeOf(&peer.NodeStatus{Name: "node-p", Role: "primary", Facts: f}, time.Now())
	x = finding(t, &readiness.Input{Now: time.Now(), Primary: self, Secondary: other}, "disks")
	if x.State != readiness.Pass || f.Disks[2].Detail != "5 reallocated, 2 pending, 2 offline-uncorrectable sectors, 38 °C" {
		t.Errorf("disks: %s %q %+v", x.State, x.Reason, f.Disks[2])
	}
}

// TestFactsSmartUnavailable: virtual disks without SMART are listed with
// Passed nil and why; the check is n/a.
func TestFactsSmartUnavailable(t *testing.T) {
	root := fixtureRoot(t)
	sf := &smartFixtures{files: map[string]string{"/dev/sda": "virtio-unknown.json", "/dev/sdb": "qemu-scsi-unavailable.json"}}
	f := readFacts(Options{Mdstat: filepath.Join(root, "missing"), Root: root, MountInfo: filepath.Join(root, "none"), NetRoot: root,
		Smart: smart.Options{Run: sf.run}}.withDefaults(), nil, time.Now())
	if len(f.Disks) != 3 {
		t.Fatalf("disks %+v", f.Disks)
	}
	for _, d := range f.Disks {
		if d.Passed != nil || !strings.HasPrefix(d.Detail, "SMART unavailable") && !strings.HasPrefix(d.Detail, "SMART not read") {
			t.Errorf("%+v", d)
		}
	}
	if d := f.Disks[0]; d.Serial == "" || !strings.Contains(d.Detail, "no fixture for /dev/nvme0n1") {
		t.Errorf("an unreadable disk keeps its serial from sysfs and says why: %+v", d)
	}
	n := NodeOf(&peer.NodeStatus{Name: "node-p", Facts: f}, time.Now())
	if x := finding(t, &readiness.Input{Now: time.Now(), Primary: n, Secondary: n}, "disks"); x.State != readiness.NA {
		t.Errorf("disks: %s %s", x.State, x.Reason)
	}
}

// TestFactsSmartBudget: the reads of one refresh are bounded together; the
// disks whose turn comes after are listed as not read.
func TestFactsSmartBudget(t *testing.T) {
	root := fixtureRoot(t)
	calls := 0
	slow := func(ctx context.Context, name string, args ...string) ([]byte, int, error) {
		calls++
		<-ctx.Done()
		return nil, -1, ctx.Err()
	}
	start := time.Now()
	f := readFacts(Options{Mdstat: filepath.Join(root, "missing"), Root: root, MountInfo: filepath.Join(root, "none"), NetRoot: root,
		Smart: smart.Options{Run: slow}, SmartBudget: 50 * time.Millisecond}.withDefaults(), nil, time.Now())
	if time.Since(start) > 5*time.Second || calls != 1 || len(f.Disks) != 3 {
		t.Fatalf("%d calls in %s: %+v", calls, time.Since(start), f.Disks)
	}
	for _, d := range f.Disks[1:] {
		if d.Passed != nil || !strings.Contains(d.Detail, "the time for one round of SMART reads (50ms) ran out") {
			t.Errorf("%+v", d)
		}
	}
}

// TestFactsSmartNotInstalled: without smartctl no disk is listed (the
// check says n/a), and a fixture root never runs the real smartctl.
func TestFactsSmartNotInstalled(t *testing.T) {
	ds := []disks.Disk{{Name: "sda"}}
	if got := readSmart(Options{Root: "/", Smart: smart.Options{Path: filepath.Join(t.TempDir(), "smartctl")}}, ds); got != nil {
		t.Errorf("without smartctl: %+v", got)
	}
	if got := readSmart(Options{Root: t.TempDir()}, ds); got != nil {
		t.Errorf("a fixture root with smartctl's own runner: %+v", got)
	}
	long := strings.Repeat("x", 600)
	run := func(context.Context, string, ...string) ([]byte, int, error) {
		return []byte(`{"smartctl":{"exit_status":0},"serial_number":"` + long + `","smart_status":{"passed":true}}`), 0, nil
	}
	got := readSmart(Options{Root: t.TempDir(), Smart: smart.Options{Run: run}}, ds)
	if len(got) != 1 || len(got[0].Device)+len(got[0].Serial) > 512 {
		t.Errorf("bounds: %+v", got)
	}
}

func passedText(p *bool) string {
	switch {
	case p == nil:
		return "nil"
	case *p:
		return "true"
	}
	return "false"
}

// finding is one check's finding of the default registry.
func finding(t *testing.T, in *readiness.Input, check string) readiness.Finding {
	t.Helper()
	for _, x := range readiness.Default().Evaluate(in).Findings {
		if x.Check == check {
			return x
		}
	}
	t.Fatalf("no finding of %s", check)
	return readiness.Finding{}
}
