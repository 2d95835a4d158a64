package failover

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var planAt = time.Date(2026, 12, 3, 2, 15, 0, 0, time.UTC)

func twoDisks() []Disk {
	return []Disk{
		{Name: "sda", Serial: "WD-WCC7K1234567", Model: "WDC WD40EFRX-68N32N0", ByPath: "pci-0000:00:17.0-ata-1",
			ByID: "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567", Bay: "enclosure 0:0:1:0 slot 1", SizeBytes: 4000787030016,
			Arrays: []string{"md0 (sda1)", "md1 (sda2)"}, LocateLit: true},
		{Name: "sdb", Serial: "WD-WCC7K7654321", Model: "WDC WD40EFRX-68N32N0", ByPath: "pci-0000:00:17.0-ata-2",
			ByID: "ata-WDC_WD40EFRX-68N32N0_WD-WCC7K7654321", Bay: "enclosure 0:0:1:0 slot 2", SizeBytes: 4000787030016,
			Arrays: []string{"md0 (sdb1)", "md1 (sdb2)"}, LocateLit: true},
	}
}

// onP is a READY unplanned plan asked on the primary.
func onP() PlanInput {
	return PlanInput{ID: "plan-20261203T021500.000Z", At: planAt, Node: "node-p", Role: "primary", Peer: "node-s",
		Verdict: "READY", Warnings: []string{"backup.fresh: the last backup is 26h old"},
		DiskSet: "ds-0a1b", Machine: "mac:02:00:00:00:0a:01", PeerMachine: "mac:02:00:00:00:0b:01", HomeMachine: "mac:02:00:00:00:0a:01",
		Disks: twoDisks(), Addresses: []string{"192.0.2.10/24 on eno1"}, Probes: []string{"http-main", "smtp", "imap"},
		ConsoleLines: []string{
			"sentry bootcheck: PRIMARY: ... (the decision and its time in ms)",
			"sentry bootcheck: FAILOVER: the primary disk set runs on machine mac:02:00:00:00:0b:01 (home mac:02:00:00:00:0a:01)",
		}}
}

// onS is a READY unplanned plan asked on the secondary.
func onS() PlanInput {
	in := onP()
	in.Node, in.Role, in.Peer = "node-s", "secondary", "node-p"
	in.DiskSet, in.Machine, in.PeerMachine, in.HomeMachine = "ds-9f8e", "mac:02:00:00:00:0b:01", "mac:02:00:00:00:0a:01", "mac:02:00:00:00:0b:01"
	in.Disks = []Disk{{Name: "nvme0n1", Serial: "S4EWNX0R123456", Model: "Samsung SSD 970 EVO Plus 500GB",
		ByPath: "pci-0000:01:00.0-nvme-1", ByID: "nvme-Samsung_SSD_970_EVO_Plus_500GB_S4EWNX0R123456", SizeBytes: 500107862016,
		Arrays: []string{"md0 (nvme0n1p2)"}}}
	in.ConsoleLines = nil
	return in
}

func goodBarrier() *Barrier {
	return &Barrier{PrimaryHead: "1a2b3c4d5e6f7a8b9c0d", AppliedHead: "1a2b3c4d5e6f7a8b9c0d", Applied: true, InventoriesFresh: true,
		At: planAt.Add(-2 * time.Second)}
}

func planned(in PlanInput) PlanInput {
	in.Planned, in.Barrier = true, goodBarrier()
	return in
}

func TestBuildRefuses(t *testing.T) {
	notReady := onS()
	notReady.Verdict = "NOT READY"
	notReady.Blocking = []string{"sync.applied: node-s could not apply 1a2b3c4d5e6f: exit 1", "verify.green: node-s: nginx red", "peer: no contact for 4m", "raid: md0 degraded"}
	unknown := onP()
	unknown.Verdict = "UNKNOWN"
	unknown.Blocking = []string{"sync.applied: evidence 5m old (window 3m)"}
	empty := onP()
	empty.Verdict = ""
	badBarrier := planned(onP())
	badBarrier.Barrier.Applied, badBarrier.Barrier.AppliedHead = false, "0f0f0f0f0f0f0f"
	badBarrier.Barrier.Detail = "node-s has applied 0f0f0f0f0f0f, not node-p's head 1a2b3c4d5e6f: wait for the sync (sentry sync)"
	staleInv := planned(onS())
	staleInv.Barrier.InventoriesFresh = false
	noBarrier := planned(onP())
	noBarrier.Barrier = nil
	for _, tc := range []struct {
		name string
		in   PlanInput
		want []string
		not  []string
	}{
		{"not ready", notReady, []string{"the verdict is NOT READY", "sync.applied: node-s could not apply", "verify.green", "peer: no contact", "(and 1 more)", "--force"}, []string{"raid: md0"}},
		{"unknown", unknown, []string{"the verdict is UNKNOWN: sync.applied: evidence 5m old", "--force"}, nil},
		{"no verdict", empty, []string{"the verdict is UNKNOWN", "--force"}, nil},
		{"barrier not applied", badBarrier, []string{"the final-sync barrier does not hold: node-s has applied 0f0f0f0f0f0f", "--force"}, []string{"verdict is"}},
		{"barrier stale inventories", staleInv, []string{"the final-sync barrier does not hold: an inventory is not fresh"}, nil},
		{"barrier not measured", noBarrier, []string{"the final-sync barrier was not measured"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Build(tc.in)
			if err == nil {
				t.Fatalf("Build made a plan: %+v", p)
			}
			if !errors.Is(err, ErrNotReady) {
				t.Errorf("error %v is not ErrNotReady", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q has %q", err, w)
				}
			}
			tc.in.Forced = true
			p, err = Build(tc.in)
			if err != nil {
				t.Fatalf("forced: %v", err)
			}
			if !p.Forced || len(p.Overrides) == 0 {
				t.Errorf("forced plan: Forced %v, Overrides %q", p.Forced, p.Overrides)
			}
			txt := p.Text()
			if head := strings.Join(strings.SplitN(txt, "\n", 5)[:4], "\n"); !strings.Contains(head, "!! FORCED: --force overrode: ") {
				t.Errorf("the forced plan's text does not say so at its top:\n%s", head)
			}
			if md := p.Markdown(); !strings.Contains(strings.SplitN(md, "## Steps", 2)[0], "> **FORCED: --force overrode: ") {
				t.Errorf("the forced plan's Markdown does not say so before the steps:\n%s", md)
			}
		})
	}
}

func TestBuildForceOnReadyOverridesNothing(t *testing.T) {
	for _, in := range []PlanInput{onP(), planned(onS())} {
		in.Forced = true
		p, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.Forced || p.Overrides != nil || strings.Contains(p.Text(), "FORCED") {
			t.Errorf("READY plan with --force marked forced: %v %q", p.Forced, p.Overrides)
		}
	}
}

func TestBuildBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*PlanInput)
		want string
	}{
		{"no node", func(in *PlanInput) { in.Node = "" }, "has no name"},
		{"unpaired role", func(in *PlanInput) { in.Role = "unpaired" }, `role "unpaired"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := onP()
			tc.mod(&in)
			_, err := Build(in)
			if err == nil || errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q (not ErrNotReady)", err, tc.want)
			}
		})
	}
}

func TestBarrierOK(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Barrier
		want bool
	}{
		{"holds", *goodBarrier(), true},
		{"not applied", Barrier{PrimaryHead: "a", AppliedHead: "b", InventoriesFresh: true}, false},
		{"applied flag but heads differ", Barrier{PrimaryHead: "a", AppliedHead: "b", Applied: true, InventoriesFresh: true}, false},
		{"inventories stale", Barrier{PrimaryHead: "a", AppliedHead: "a", Applied: true}, false},
		{"zero", Barrier{}, false},
	} {
		if got := tc.b.OK(); got != tc.want {
			t.Errorf("%s: OK() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// scenarios are the plans pinned by golden files.
func scenarios() map[string]PlanInput {
	forcedS := planned(onS())
	forcedS.Verdict, forcedS.Forced = "NOT READY", true
	forcedS.Blocking = []string{"verify.green: node-s: probe smtp red for 4m"}
	forcedS.Barrier.InventoriesFresh = false
	forcedS.Barrier.Detail = "an inventory is older than 25m0s (node-s: 40m old, node-p: 2m old): sentry parity inventory on both"
	lab := planned(onP())
	lab.Disks, lab.DisksNote = nil, "no block devices under /sys/block: this node has no disks of its own (a container or the lab)"
	lab.Machine, lab.PeerMachine, lab.HomeMachine = "lab-a", "lab-b", "lab-a"
	lab.ConsoleLines = nil
	back := planned(onP()) // node-p runs on b after a planned swap; the swap back
	back.Machine, back.PeerMachine = back.PeerMachine, back.Machine
	back.ConsoleLines = nil
	unpaired := onP()
	unpaired.Peer, unpaired.PeerMachine, unpaired.Verdict, unpaired.Forced = "", "", "NOT READY", true
	unpaired.Blocking = []string{"peer: this node has no peer"}
	unpaired.ConsoleLines, unpaired.Addresses, unpaired.Probes, unpaired.Warnings = nil, nil, nil, nil
	return map[string]PlanInput{
		"unplanned-on-primary":        onP(),
		"unplanned-on-secondary":      onS(),
		"planned-on-primary":          planned(onP()),
		"planned-forced-on-secondary": forcedS,
		"planned-lab-no-disks":        lab,
		"planned-swap-back":           back,
		"unplanned-unpaired-forced":   unpaired,
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestPlanGolden(t *testing.T) {
	for name, in := range scenarios() {
		t.Run(name, func(t *testing.T) {
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "plan-"+name+".txt", p.Text())
			golden(t, "plan-"+name+".md", p.Markdown())
		})
	}
}

func TestPlanNamesTheDisks(t *testing.T) {
	for name, in := range scenarios() {
		t.Run(name, func(t *testing.T) {
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			for form, out := range map[string]string{"text": p.Text(), "markdown": p.Markdown()} {
				if in.DisksNote != "" && !strings.Contains(out, in.DisksNote) {
					t.Errorf("%s lacks the disks note %q", form, in.DisksNote)
				}
				if len(in.Disks) == 0 && (strings.Contains(out, "SERIAL") || strings.Contains(out, "| disk |")) {
					t.Errorf("%s prints a disk table without disks", form)
				}
				for _, d := range in.Disks {
					want := []string{d.Name, d.Serial, d.Model, d.Bay, d.ByPath, d.ByID}
					want = append(want, d.Arrays...)
					for _, w := range want {
						if w != "" && !strings.Contains(out, w) {
							t.Errorf("%s lacks %q of disk %s", form, w, d.Name)
						}
					}
				}
			}
		})
	}
}

func TestPlanStepsNumberedInOrder(t *testing.T) {
	textStep := regexp.MustCompile(`(?m)^ ?(\d+)\. (.*)$`)
	mdStep := regexp.MustCompile(`(?m)^(\d+)\. \*\*(.*)\*\*$`)
	for name, in := range scenarios() {
		t.Run(name, func(t *testing.T) {
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Steps) < 5 {
				t.Fatalf("%d steps", len(p.Steps))
			}
			for form, re := range map[string]*regexp.Regexp{"text": textStep, "markdown": mdStep} {
				out := p.Text()
				if form == "markdown" {
					out = p.Markdown()
				}
				ms := re.FindAllStringSubmatch(out, -1)
				if len(ms) != len(p.Steps) {
					t.Fatalf("%s: %d numbered steps, want %d", form, len(ms), len(p.Steps))
				}
				for i, m := range ms {
					if n, _ := strconv.Atoi(m[1]); n != i+1 || m[2] != p.Steps[i].Title {
						t.Errorf("%s: step %d is %q %q, want %d %q", form, i, m[1], m[2], i+1, p.Steps[i].Title)
					}
				}
			}
		})
	}
}

// TestPlanContent pins what each kind of plan must say, whatever the
// wording around it.
func TestPlanContent(t *testing.T) {
	sc := scenarios()
	for _, tc := range []struct {
		name string
		want []string
		not  []string
	}{
		{"unplanned-on-primary", []string{
			"Take node-p's disks out of machine mac:02:00:00:00:0a:01",
			"Put node-p's disks into machine mac:02:00:00:00:0b:01, in the same bays",
			"Disks lists the 2 disks of disk set ds-0a1b (node-p, the primary)",
			"locate LEDs of their bays are lit (2 of 2)",
			"sentry bootcheck: FAILOVER: the primary disk set runs on machine mac:02:00:00:00:0b:01 (home mac:02:00:00:00:0a:01)",
		}, []string{"final-sync barrier"}},
		{"unplanned-on-secondary", []string{
			"Take node-s's disks out of machine mac:02:00:00:00:0b:01 and put them aside",
			"Disks lists the 1 disk of disk set ds-9f8e (node-s, the secondary)",
			"Move node-p's disks from machine mac:02:00:00:00:0a:01 into machine mac:02:00:00:00:0b:01",
			"`sentry promote` on node-s instead",
		}, []string{"locate LEDs"}},
		{"planned-on-primary", []string{
			"Check the final-sync barrier", "The barrier holds.",
			"Swap the disk sets: node-p's into machine mac:02:00:00:00:0b:01, node-s's into machine mac:02:00:00:00:0a:01",
			"To swap back: `sentry failover plan --planned` again, then the same steps",
			"`sentry bootcheck: SECONDARY: ...`",
		}, nil},
		{"planned-forced-on-secondary", []string{
			"NOT MET, overridden with --force: an inventory is older than 25m0s",
			"FORCED: --force overrode: the verdict is NOT READY: verify.green: node-s: probe smtp red for 4m; the final-sync barrier does not hold",
		}, nil},
		{"planned-lab-no-disks", []string{"No disk list for disk set ds-0a1b (node-p, the primary): no block devices under /sys/block"}, []string{"SERIAL"}},
		{"planned-swap-back", []string{
			"sentry bootcheck: PRIMARY: the primary disk set on its home machine",
			"This is the swap back", "the record is a planned swap",
		}, []string{"FAILOVER:", "To swap back"}},
		{"unplanned-unpaired-forced", []string{"no peer", "the secondary's machine"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Build(sc[tc.name])
			if err != nil {
				t.Fatal(err)
			}
			for form, out := range map[string]string{"text": p.Text(), "markdown": p.Markdown()} {
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Errorf("%s lacks %q", form, w)
					}
				}
				for _, w := range tc.not {
					if strings.Contains(out, w) {
						t.Errorf("%s has %q", form, w)
					}
				}
			}
		})
	}
}

// Every plan says what the console shows, what to check afterwards, and
// how to leave safe mode, in the docs' terms.
func TestPlanAlwaysSays(t *testing.T) {
	for name, in := range scenarios() {
		p, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(append(append(append([]string{}, p.Console...), p.After...), p.SafeMode...), "\n")
		for _, w := range []string{"sentry bootcheck: PRIMARY: ", "`sentry failover status`", "`sentry ready`", "`sentry status`",
			"`sentry bootcheck explain`", "`sentry bootcheck adopt`", "`sentry promote`", "two primaries", "SAFE MODE"} {
			if !strings.Contains(all, w) {
				t.Errorf("%s: console, after and safe mode lack %q", name, w)
			}
		}
		for _, pr := range in.Probes {
			if !strings.Contains(strings.Join(p.After, "\n"), pr) {
				t.Errorf("%s: afterwards lacks probe %s", name, pr)
			}
		}
	}
}

func TestPlanJSON(t *testing.T) {
	in := scenarios()["planned-forced-on-secondary"]
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Text() != p.Text() || back.Markdown() != p.Markdown() {
		t.Errorf("the plan read back from JSON prints differently")
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "at", "node", "role", "peer", "planned", "forced", "verdict", "blocking", "barrier",
		"disk_set", "machine", "peer_machine", "home_machine", "disks", "steps", "console", "after", "safe_mode", "overrides"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if at, _ := m["at"].(string); at != "2026-12-03T02:15:00Z" {
		t.Errorf("at = %q, want RFC 3339", at)
	}
}

// TestJSONTags: every exported field of the package's types has a
// snake_case JSON tag.
func TestJSONTags(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for _, v := range []any{Disk{}, Barrier{}, Step{}, Plan{}, Record{}, Stage{}, phaseJSON{}} {
		ty := reflect.TypeOf(v)
		for i := range ty.NumField() {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if !snake.MatchString(name) {
				t.Errorf("%s.%s: JSON tag %q is not snake_case", ty.Name(), f.Name, name)
			}
		}
	}
}

// Build copies what it is given: changing the input afterwards does not
// change the plan.
func TestBuildCopies(t *testing.T) {
	in := onP()
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	before := p.Text()
	in.Disks[0].Serial, in.Disks[0].Arrays[0], in.Blocking, in.Probes[0], in.ConsoleLines[0] = "X", "X", nil, "X", "X"
	if p.Text() != before {
		t.Error("changing the input changed the plan")
	}
}
