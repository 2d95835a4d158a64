package smart

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture is a runner that answers with a testdata file, exiting with the
// status the file records (smartctl.exit_status), and records its calls.
type fixture struct {
	mu    sync.Mutex
	files map[string]string // the last argument ("-d sat /dev/sdc" for a typed call) -> file
	calls [][]string
}

func (f *fixture) run(_ context.Context, name string, args ...string) ([]byte, int, error) {
	f.mu.Lock()
	f.calls = append(f.calls, append([]string{name}, args...))
	f.mu.Unlock()
	key := args[len(args)-1]
	if len(args) >= 3 && args[len(args)-3] == "-d" {
		key = "-d " + args[len(args)-2] + " " + key
	}
	file, ok := f.files[key]
	if !ok {
		return nil, -1, errors.New("no fixture for " + key)
	}
	return fixtureOutput(file)
}

func fixtureOutput(file string) ([]byte, int, error) {
	b, err := os.ReadFile(filepath.Join("testdata", file))
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

func ptr(b bool) *bool { return &b }

func TestReadFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, dev      string
		passed         *bool
		serial, model  string
		typ            string
		detail         string
		warnings       []string
		err            string // a substring of the error; "" none
		unsupported    bool
		status         int
		wantNoWarnings bool
	}{
		{file: "ata-hdd-passed.json", dev: "sda", passed: ptr(true), serial: "WD-WCC7K4PLX1A2", model: "WDC WD40EFRX-68N32N0", typ: "sat",
			detail: "34 °C", wantNoWarnings: true},
		{file: "ata-hdd-pending.json", dev: "sdb", passed: ptr(true), serial: "WD-WCC7K1DYH2C9", model: "WDC WD40EFRX-68N32N0", typ: "sat",
			detail:   "5 reallocated, 2 pending, 2 offline-uncorrectable sectors, 38 °C",
			warnings: []string{"2 sector(s) pending reallocation (Current_Pending_Sector)", "2 offline-uncorrectable sector(s) (Offline_Uncorrectable)"}},
		{file: "ata-ssd-reallocated.json", dev: "/dev/sda", passed: ptr(true), serial: "S3Z2NB0K612345T", model: "Samsung SSD 860 EVO 500GB", typ: "sat",
			detail: "8 reallocated sectors, 31 °C", wantNoWarnings: true},
		{file: "ata-hdd-failed.json", dev: "sdb", passed: ptr(false), serial: "Z1E4K7QX", model: "ST2000DM001-1CH164", typ: "sat", status: 88,
			detail: "3976 reallocated, 48 pending, 48 offline-uncorrectable sectors, failing now: Reallocated_Sector_Ct, 41 °C",
			warnings: []string{"48 sector(s) pending reallocation (Current_Pending_Sector)", "48 offline-uncorrectable sector(s) (Offline_Uncorrectable)",
				"prefail attributes at or below their threshold now", "the device's error log has entries (smartctl -l error /dev/sdb)"}},
		{file: "nvme-passed.json", dev: "nvme0n1", passed: ptr(true), serial: "S4EWNX0R123456K", model: "Samsung SSD 970 EVO Plus 1TB", typ: "nvme",
			detail: "3% used, 41 °C", wantNoWarnings: true},
		// smartctl itself fails an NVMe drive with a critical warning (bit 3).
		{file: "nvme-critical.json", dev: "nvme1n1", passed: ptr(false), serial: "S4EWNX0R654321A", model: "Samsung SSD 970 EVO Plus 1TB", typ: "nvme", status: 72,
			detail: "NVMe critical warning 0x04 (reliability degraded), 12 media errors, 3% used, 44 °C",
			warnings: []string{"NVMe critical warning 0x04 (reliability degraded)", "12 media and data integrity error(s)",
				"the device's error log has entries (smartctl -l error /dev/nvme1n1)"}},
		{file: "virtio-unknown.json", dev: "vda", status: 1, detail: "SMART unavailable: /dev/vda: Unable to detect device type",
			err: "smartctl /dev/vda: exit status 1: /dev/vda: Unable to detect device type", unsupported: true},
		{file: "qemu-scsi-unavailable.json", dev: "sda", status: 4, serial: "drive-scsi0", model: "QEMU QEMU HARDDISK", typ: "scsi",
			detail: "SMART unavailable", wantNoWarnings: true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := &fixture{files: map[string]string{"/dev/" + strings.TrimPrefix(tc.dev, "/dev/"): tc.file}}
			h, err := Read(context.Background(), tc.dev, Options{Run: f.run})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Unsupported != tc.unsupported || e.Device != "/dev/"+strings.TrimPrefix(tc.dev, "/dev/")) {
				t.Errorf("error %#v, want unsupported=%v", err, tc.unsupported)
			}
			if (h.Passed == nil) != (tc.passed == nil) || h.Passed != nil && *h.Passed != *tc.passed {
				t.Errorf("passed %v, want %v", show(h.Passed), show(tc.passed))
			}
			if h.Device != "/dev/"+strings.TrimPrefix(tc.dev, "/dev/") || h.Serial != tc.serial || h.Model != tc.model || h.Type != tc.typ || h.Status != tc.status {
				t.Errorf("identity %q %q %q %q status %d", h.Device, h.Serial, h.Model, h.Type, h.Status)
			}
			if h.Detail != tc.detail {
				t.Errorf("detail %q\n want %q", h.Detail, tc.detail)
			}
			if tc.warnings != nil && !reflect.DeepEqual(h.Warnings, tc.warnings) {
				t.Errorf("warnings %q\n want %q", h.Warnings, tc.warnings)
			}
			if tc.wantNoWarnings && len(h.Warnings) > 0 {
				t.Errorf("warnings on a healthy disk: %q", h.Warnings)
			}
			if len(f.calls) != 1 || strings.Join(f.calls[0], " ") != "smartctl --json=c -H -A -i /dev/"+strings.TrimPrefix(tc.dev, "/dev/") {
				t.Errorf("calls %q", f.calls)
			}
		})
	}
}

func show(b *bool) string {
	if b == nil {
		return "nil"
	}
	if *b {
		return "true"
	}
	return "false"
}

// TestUSBBridgeRetriesSAT: a USB bridge smartctl does not know is read
// again with -d sat.
func TestUSBBridgeRetriesSAT(t *testing.T) {
	f := &fixture{files: map[string]string{"/dev/sdc": "usb-unknown-bridge.json", "-d sat /dev/sdc": "usb-sat.json"}}
	h, err := Read(context.Background(), "sdc", Options{Run: f.run})
	if err != nil || h.Passed == nil || !*h.Passed || h.Serial != "WD-WMAZA5123456" || h.Type != "sat" || h.Detail != "29 °C" {
		t.Fatalf("%+v %v", h, err)
	}
	want := [][]string{
		{"smartctl", "--json=c", "-H", "-A", "-i", "/dev/sdc"},
		{"smartctl", "--json=c", "-H", "-A", "-i", "-d", "sat", "/dev/sdc"},
	}
	if !reflect.DeepEqual(f.calls, want) {
		t.Errorf("calls %q", f.calls)
	}

	// A bridge that does not speak SAT either: the first answer stands.
	f = &fixture{files: map[string]string{"/dev/sdc": "usb-unknown-bridge.json", "-d sat /dev/sdc": "virtio-unknown.json"}}
	h, err = Read(context.Background(), "sdc", Options{Run: f.run})
	var e *Error
	if !errors.As(err, &e) || !e.Unsupported || !strings.Contains(h.Detail, "Unknown USB bridge") || h.Passed != nil {
		t.Errorf("%+v %v", h, err)
	}

	// A type given: no retry, -d passed.
	f = &fixture{files: map[string]string{"-d sat /dev/sdc": "usb-sat.json"}}
	if _, err := Read(context.Background(), "sdc", Options{Run: f.run, Type: "sat", Path: "/opt/smartctl"}); err != nil || len(f.calls) != 1 || f.calls[0][0] != "/opt/smartctl" {
		t.Errorf("%v %q", err, f.calls)
	}
}

// TestPassedWithCriticalWarning: a drive whose overall status says PASSED
// but whose NVMe log has a critical warning stays passed, with the warning
// in Detail and Warnings.
func TestPassedWithCriticalWarning(t *testing.T) {
	b, _, err := fixtureOutput("nvme-critical.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	json.Unmarshal(b, &doc)
	doc["smart_status"] = map[string]any{"passed": true}
	doc["smartctl"].(map[string]any)["exit_status"] = 0
	out, _ := json.Marshal(doc)
	run := func(context.Context, string, ...string) ([]byte, int, error) { return out, 0, nil }
	h, err := Read(context.Background(), "nvme1n1", Options{Run: run})
	if err != nil || h.Passed == nil || !*h.Passed {
		t.Fatalf("%+v %v", h, err)
	}
	if !strings.HasPrefix(h.Detail, "NVMe critical warning 0x04 (reliability degraded)") || len(h.Warnings) != 2 {
		t.Errorf("%q %q", h.Detail, h.Warnings)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(context.Context, string, ...string) ([]byte, int, error)
		want string
	}{
		{"did not run", func(context.Context, string, ...string) ([]byte, int, error) {
			return nil, -1, errors.New("no answer within 20s")
		}, "smartctl /dev/sda: no answer within 20s"},
		{"not JSON", func(context.Context, string, ...string) ([]byte, int, error) {
			return []byte("smartctl 6.6 2016-05-31 r4324\n=== START OF INFORMATION SECTION ===\n"), 0, nil
		}, "smartctl /dev/sda: exit status 0: output is not JSON (smartctl older than 7?): invalid character 's' looking for beginning of value: smartctl 6.6 2016-05-31 r4324"},
		{"empty", func(context.Context, string, ...string) ([]byte, int, error) { return nil, 2, nil },
			"smartctl /dev/sda: exit status 2: output is not JSON (smartctl older than 7?): unexpected end of JSON input"},
		{"open failed", func(context.Context, string, ...string) ([]byte, int, error) {
			return []byte(`{"smartctl":{"exit_status":2},"device":{"name":"/dev/sda","type":"sat"}}`), 2, nil
		}, "smartctl /dev/sda: exit status 2: device open failed"},
		{"permission", func(context.Context, string, ...string) ([]byte, int, error) {
			return []byte(`{"smartctl":{"exit_status":2,"messages":[{"string":"Smartctl open device: /dev/sda failed: Permission denied","severity":"error"}]}}`), 2, nil
		}, "smartctl /dev/sda: exit status 2: Smartctl open device: /dev/sda failed: Permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Read(context.Background(), "sda", Options{Run: tc.run})
			var e *Error
			if err == nil || err.Error() != tc.want || !errors.As(err, &e) || e.Unsupported {
				t.Fatalf("error %v\n want %s", err, tc.want)
			}
			if h.Passed != nil || h.Device != "/dev/sda" || !strings.HasPrefix(h.Detail, "SMART not read: ") {
				t.Errorf("%+v", h)
			}
		})
	}
	if _, err := Read(context.Background(), "-a", Options{Run: func(context.Context, string, ...string) ([]byte, int, error) {
		t.Error("an option was run as a device")
		return nil, 0, nil
	}}); err == nil {
		t.Error("a device named like an option was read")
	}
}

// script writes an executable shell script standing in for smartctl.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smartctl")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExecRunner: the default runner takes a non-zero exit as smartctl's
// status, not an error, and bounds a run by Timeout.
func TestExecRunner(t *testing.T) {
	b, _ := os.ReadFile("testdata/ata-hdd-failed.json")
	data := filepath.Join(t.TempDir(), "out.json")
	os.WriteFile(data, b, 0o644)
	p := script(t, `[ "$5" = /dev/sdb ] || exit 1; cat '`+data+`'; exit 88`+"\n")
	if !Available(Options{Path: p}) {
		t.Fatal("an executable smartctl is not available")
	}
	h, err := Read(context.Background(), "sdb", Options{Path: p})
	if err != nil || h.Passed == nil || *h.Passed || h.Status != 88 {
		t.Fatalf("%+v %v", h, err)
	}

	slow := script(t, "exec sleep 5\n")
	start := time.Now()
	_, err = Read(context.Background(), "sda", Options{Path: slow, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") || time.Since(start) > 4*time.Second {
		t.Errorf("%v after %s", err, time.Since(start))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Read(ctx, "sda", Options{Path: slow}); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("a cancelled read: %v", err)
	}
}

func TestAvailable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "smartctl")
	if Available(Options{Path: missing}) {
		t.Error("a missing smartctl is available")
	}
	if _, err := Read(context.Background(), "sda", Options{Path: missing}); err == nil || !strings.Contains(err.Error(), "install smartmontools") {
		t.Errorf("%v", err)
	}
	if !Available(Options{Run: func(context.Context, string, ...string) ([]byte, int, error) { return nil, 0, nil }}) {
		t.Error("a runner of the caller's is not available")
	}
}

func TestCleanBounds(t *testing.T) {
	long := strings.Repeat("é", 400)
	out := []byte(`{"smartctl":{"exit_status":0},"serial_number":"A\u001b[31mB\nC","model_name":"` + long + `","smart_status":{"passed":true}}`)
	h, err := Read(context.Background(), "sda", Options{Run: func(context.Context, string, ...string) ([]byte, int, error) { return out, 0, nil }})
	if err != nil || h.Serial != "A[31mB C" || len(h.Model) > maxField || !strings.HasSuffix(h.Model, "…") {
		t.Errorf("%q %q %v", h.Serial, h.Model, err)
	}
}
