package failover

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 2, 20, 0, 0, time.UTC)

func at(d string) time.Time {
	dd, err := time.ParseDuration(d)
	if err != nil {
		panic(err)
	}
	return t0.Add(dd)
}

// complete is a planned swap, all of it seen.
func complete() Record {
	planned := planAt
	return Record{ID: "failover-20261203T022542Z", Kind: KindPlanned, DiskSet: "ds-0a1b", Node: "node-p",
		FromMachine: "mac:02:00:00:00:0a:01", ToMachine: "mac:02:00:00:00:0b:01",
		PlanID: "plan-20261203T021500.000Z", PlannedAt: &planned,
		LastPeerContact: at("0s"), Boot: at("5m30s"), Decision: at("5m42.812s"), DecisionOutcome: "primary",
		DecisionReason: "the primary disk set on the home machine of node-s (one of this cluster's machines)",
		Stages:         []Stage{{Name: "stamp", MS: 3.2}, {Name: "machine", MS: 41}, {Name: "probe", MS: 655.4}},
		AddressUp:      at("5m47.1s"), Addresses: []string{"eno1/192.0.2.10/24"}, Announced: at("5m47.3s"),
		Services: map[string]time.Time{"http-main": at("6m02s"), "smtp": at("6m05.5s"), "imap": at("6m04s")},
		PeerBack: at("5m58s"), VerdictAfter: "READY", VerdictAt: at("6m40s"),
		Complete: true, Updated: at("6m41s")}
}

// incomplete is a failover whose services are partly green and whose peer
// is not back.
func incomplete() Record {
	r := complete()
	r.ID, r.Kind, r.PlanID, r.PlannedAt = "failover-20261204T100000Z", KindFailover, "", nil
	r.Services = map[string]time.Time{"http-main": at("6m02s")}
	r.PeerBack, r.VerdictAfter, r.VerdictAt, r.Complete = time.Time{}, "", time.Time{}, false
	return r
}

func TestPhasesComplete(t *testing.T) {
	r := complete()
	got := r.Phases()
	want := []Phase{
		{Name: "shutdown and move", From: at("0s"), To: at("5m30s"), Duration: 5*time.Minute + 30*time.Second},
		{Name: "boot to decision", From: at("5m30s"), To: at("5m42.812s"), Duration: 12812 * time.Millisecond},
		{Name: "decision to address", From: at("5m42.812s"), To: at("5m47.1s"), Duration: 4288 * time.Millisecond},
		{Name: "address to services green", From: at("5m47.1s"), To: at("6m05.5s"), Duration: 18400 * time.Millisecond},
		// The peer came back before the last service was green (a planned
		// swap boots both): the phase is 0.
		{Name: "services to peer back", From: at("6m05.5s"), To: at("5m58s")},
		{Name: "peer back to verdict", From: at("5m58s"), To: at("6m40s"), Duration: 42 * time.Second},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Phases\n got %+v\nwant %+v", got, want)
	}
	if d, ok := r.Downtime(); !ok || d != 6*time.Minute+5500*time.Millisecond {
		t.Errorf("Downtime = %v %v, want 6m5.5s", d, ok)
	}
	if err := r.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if m := r.Missing([]string{"http-main", "smtp", "imap"}); m != nil {
		t.Errorf("Missing = %q, want none", m)
	}
}

func TestPhasesIncomplete(t *testing.T) {
	r := incomplete()
	ph := r.Phases()
	var missing []string
	for _, p := range ph {
		if p.Missing {
			missing = append(missing, p.Name)
			if p.Duration != 0 {
				t.Errorf("missing phase %s has duration %v", p.Name, p.Duration)
			}
		}
	}
	if want := []string{"services to peer back", "peer back to verdict"}; !reflect.DeepEqual(missing, want) {
		t.Errorf("missing phases %q, want %q", missing, want)
	}
	if ph[3].To != at("6m02s") {
		t.Errorf("services phase ends %v", ph[3].To)
	}
	if d, ok := r.Downtime(); !ok || d != 6*time.Minute+2*time.Second {
		t.Errorf("Downtime = %v %v (the services seen so far)", d, ok)
	}
	if err := r.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}

	// Nothing seen after the boot yet.
	r = Record{ID: "x", Kind: KindFailover, LastPeerContact: at("0s"), Boot: at("1m"), Services: map[string]time.Time{"smtp": {}}}
	if _, ok := r.Downtime(); ok {
		t.Error("Downtime known with no service green")
	}
	for _, p := range r.Phases()[1:] {
		if !p.Missing {
			t.Errorf("phase %s not missing", p.Name)
		}
	}
	// No last contact: the downtime has no start.
	r = complete()
	r.LastPeerContact = time.Time{}
	if _, ok := r.Downtime(); ok {
		t.Error("Downtime known without the last contact")
	}
	if !r.Phases()[0].Missing {
		t.Error("shutdown and move not missing")
	}
}

func TestMissing(t *testing.T) {
	probes := []string{"http-main", "smtp", "imap"}
	for _, tc := range []struct {
		name     string
		r        Record
		expected []string
		want     []string
	}{
		{"complete", complete(), probes, nil},
		{"incomplete", incomplete(), probes, []string{"service smtp green", "service imap green", "peer back", "verdict"}},
		{"expected twice", incomplete(), []string{"smtp", "smtp"}, []string{"service smtp green", "peer back", "verdict"}},
		{"not ready yet", func() Record { r := complete(); r.VerdictAfter = "NOT READY"; return r }(), probes,
			[]string{"verdict READY (now NOT READY)"}},
		{"a service in the record not expected, not green", func() Record {
			r := complete()
			r.Services["samba"] = time.Time{}
			return r
		}(), probes, []string{"service samba green"}},
		{"just booted", Record{Boot: at("1m")}, []string{"smtp"},
			[]string{"decision", "address up", "service smtp green", "peer back", "verdict"}},
		{"nothing", Record{}, nil, []string{"boot", "decision", "address up", "peer back", "verdict"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Missing(tc.expected); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Missing = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Record)
		want string // "" is consistent
	}{
		{"consistent", func(*Record) {}, ""},
		{"incomplete is consistent", func(r *Record) { *r = incomplete() }, ""},
		{"boot before the last contact", func(r *Record) { r.Boot = at("-1s") },
			`phase "shutdown and move": the boot at 2026-12-03 02:19:59.000 UTC, before the last contact with the peer at 2026-12-03 02:20:00.000 UTC`},
		{"decision before the boot", func(r *Record) { r.Decision = at("5m29s") }, `phase "boot to decision": the decision at`},
		{"address before the decision", func(r *Record) { r.AddressUp = at("5m40s") }, `phase "decision to address": the address up at`},
		{"service before the address", func(r *Record) { r.Services["smtp"] = at("5m47s") },
			`phase "address to services green": service smtp green at 2026-12-03 02:25:47.000 UTC, before the address up at 2026-12-03 02:25:47.100 UTC`},
		{"service before the boot, no address yet", func(r *Record) { r.AddressUp = time.Time{}; r.Services["imap"] = at("1m") },
			`phase "address to services green": service imap green at 2026-12-03 02:21:00.000 UTC, before the decision`},
		{"decision before the boot, gaps between", func(r *Record) { r.Decision = time.Time{}; r.AddressUp = at("5m") },
			`phase "decision to address": the address up at 2026-12-03 02:25:00.000 UTC, before the boot`},
		{"announced before the address is not a phase", func(r *Record) { r.Announced = at("5m47s") }, ""},
		{"peer back before the boot", func(r *Record) { r.PeerBack = at("5m") }, `phase "services to peer back": the peer back at 2026-12-03 02:25:00.000 UTC, before the boot`},
		{"verdict before the peer back", func(r *Record) { r.VerdictAt = at("5m50s") }, `phase "peer back to verdict": the verdict at`},
		{"unknown kind", func(r *Record) { r.Kind = "swap" }, `unknown kind "swap"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := complete()
			tc.mod(&r)
			err := r.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("Check passed, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("Check: %v\nwant it to contain %q", err, tc.want)
			case err != nil && !strings.HasPrefix(err.Error(), "failover record "+r.ID+": "):
				t.Errorf("Check: %v does not name the record", err)
			}
		})
	}
}

func TestClassifyKind(t *testing.T) {
	const a, b, c = "A", "B", "C"
	for _, tc := range []struct {
		planned             bool
		prev, machine, home string
		want                Kind
	}{
		{false, a, b, a, KindFailover},  // P's machine failed; P on S's machine
		{true, a, b, a, KindPlanned},    // a planned swap away from home
		{false, b, a, a, KindFailback},  // back home, unplanned (b failed)
		{true, b, a, a, KindPlanned},    // the planned swap back
		{false, b, c, a, KindFailover},  // from one foreign machine to another
		{true, b, c, a, KindPlanned},    // planned, still away from home
		{false, "", b, a, KindFailover}, // where it ran is unknown, now away
		{true, "", a, a, KindPlanned},   // a plan and home: the swap back
		{false, "", a, a, KindNone},     // home, nothing says it moved
		{false, a, a, a, KindNone},      // a reboot at home
		{true, b, b, a, KindNone},       // a reboot away from home
		{false, a, b, "", KindFailover}, // home unknown
	} {
		if got := ClassifyKind(tc.planned, tc.prev, tc.machine, tc.home); got != tc.want {
			t.Errorf("ClassifyKind(%v, %q, %q, %q) = %q, want %q", tc.planned, tc.prev, tc.machine, tc.home, got, tc.want)
		}
	}
}

func TestHistoryText(t *testing.T) {
	old := complete()
	old.ID, old.Boot = "failover-20261101T090000Z", at("-720h")
	old.Kind = KindFailback
	mid := complete()
	newest := incomplete()
	forced := complete()
	forced.ID, forced.Forced, forced.Boot = "failover-20261120T090000Z", true, at("-300h")
	forced.Kind = KindFailover
	got := HistoryText([]Record{old, newest, forced, mid})
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	wantIDs := []string{newest.ID, mid.ID, forced.ID, old.ID}
	if len(lines) != len(wantIDs) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(wantIDs), got)
	}
	for i, id := range wantIDs {
		if !strings.HasPrefix(lines[i], id+" ") {
			t.Errorf("line %d is %q, want record %s (newest first)", i, lines[i], id)
		}
	}
	for i, want := range [][]string{
		{"failover", "ds-0a1b", "mac:02:00:00:00:0a:01 -> mac:02:00:00:00:0b:01", "downtime 6m2s", "incomplete"},
		{"planned swap", "downtime 6m6s", "complete"},
		{"failover", "complete, forced"},
		{"failback", "complete"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	// Same boot: the id decides, newest first.
	x, y := complete(), complete()
	y.ID = "failover-20261203T022543Z"
	if got := HistoryText([]Record{x, y}); !strings.HasPrefix(got, y.ID) {
		t.Errorf("same boot: got\n%s", got)
	}
	if got := HistoryText(nil); got != "" {
		t.Errorf("no records: %q", got)
	}
	golden(t, "history.txt", HistoryText([]Record{old, newest, forced, mid}))
}

func TestRecordText(t *testing.T) {
	golden(t, "record-complete.txt", ptr(complete()).Text())
	golden(t, "record-incomplete.txt", ptr(incomplete()).Text())
	r := complete()
	txt := r.Text()
	for _, w := range []string{"PLANNED SWAP failover-20261203T022542Z", "mac:02:00:00:00:0a:01 -> mac:02:00:00:00:0b:01",
		"boot to decision", "12.8s", "smtp", "(35.5s after the boot)", "READY", "downtime:   6m6s", "complete"} {
		if !strings.Contains(txt, w) {
			t.Errorf("record text lacks %q:\n%s", w, txt)
		}
	}
	r.Forced = true
	if !strings.Contains(r.Text(), "FORCED") {
		t.Error("a forced record's text does not say so")
	}
}

func ptr[T any](v T) *T { return &v }

func TestRecordJSON(t *testing.T) {
	r := complete()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Text() != r.Text() {
		t.Error("the record read back from JSON prints differently")
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"id", "kind", "disk_set", "from_machine", "to_machine", "plan_id", "planned_at", "last_peer_contact",
		"boot", "decision", "decision_outcome", "stages", "address_up", "announced", "services", "peer_back", "verdict_after", "verdict_at", "complete"} {
		if _, ok := m[k]; !ok {
			t.Errorf("record JSON lacks %q", k)
		}
	}
	if m["boot"] != "2026-12-03T02:25:30Z" {
		t.Errorf("boot = %v, want RFC 3339", m["boot"])
	}
	// An incomplete record leaves out what it has not seen.
	b, _ = json.Marshal(incomplete())
	if strings.Contains(string(b), "peer_back") || strings.Contains(string(b), "0001-01-01") {
		t.Errorf("incomplete record JSON has zero times: %s", b)
	}

	// Phases: duration_ms, and back.
	ph := r.Phases()
	b, err = json.Marshal(ph)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"name":"boot to decision","from":"2026-12-03T02:25:30Z","to":"2026-12-03T02:25:42.812Z","duration_ms":12812}`) {
		t.Errorf("phases JSON: %s", b)
	}
	var phBack []Phase
	if err := json.Unmarshal(b, &phBack); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(phBack, ph) {
		t.Errorf("phases back from JSON\n got %+v\nwant %+v", phBack, ph)
	}
	b, _ = json.Marshal(ptr(incomplete()).Phases())
	if !strings.Contains(string(b), `{"name":"services to peer back","from":"2026-12-03T02:26:02Z","duration_ms":0,"missing":true}`) {
		t.Errorf("missing phase JSON: %s", b)
	}
}
