// Package smart reads a disk's SMART health with smartmontools' smartctl
// (version 7 or later, for its JSON output): the overall self-assessment,
// the disk's identity, its temperature, the ATA sector counters that tell
// a disk on its way out (reallocated, pending, offline-uncorrectable) and
// NVMe's health log (critical warning, media errors, wear).
//
// smartctl's exit status is a bit mask (man smartctl, EXIT STATUS): bit 0
// the command line did not parse (also "Unable to detect device type"),
// bit 1 the device could not be opened, bit 2 a command failed or a
// checksum was wrong, bit 3 "DISK FAILING", bit 4 prefail attributes at or
// below their threshold, bit 5 attributes were so in the past, bit 6 the
// error log has entries, bit 7 the self-test log has errors. Only bits 0
// and 1 make the disk unreadable; bit 3 makes it failed; the others are
// warnings.
package smart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode"
)

// DefaultTimeout bounds one smartctl run of the default runner.
const DefaultTimeout = 20 * time.Second

// Bounds of what Health carries (a disk's strings come from its firmware).
const (
	maxField  = 128 // serial, model, device
	maxDetail = 512
	maxOutput = 4 << 20 // smartctl's JSON for -H -A -i is a few KB
)

// Options say how smartctl is run.
type Options struct {
	// Path is the smartctl binary; "" looks "smartctl" up in PATH, then in
	// /usr/sbin and /sbin (a service's PATH may lack them).
	Path string
	// Run runs name with args and returns its standard output and exit
	// status; err is set only when the command did not run to its end (not
	// found, killed, timed out). nil: exec with a timeout of Timeout.
	Run func(ctx context.Context, name string, args ...string) (out []byte, status int, err error)
	// Timeout bounds one run of the default runner (0: DefaultTimeout).
	Timeout time.Duration
	// Type is smartctl's -d device type ("" lets smartctl detect it, and
	// an unknown USB bridge is tried again with -d sat).
	Type string
}

// Health is one disk's SMART health.
type Health struct {
	Device string // /dev/sda
	Type   string // smartctl's device type: sat, nvme, scsi, ...
	Serial string
	Model  string
	// Passed is the SMART overall-health self-assessment; nil when the
	// disk has no SMART smartctl can read (a virtual disk: "SMART support
	// is: Unavailable") or it could not be read.
	Passed *bool
	// Detail is the health in a few words: "5 reallocated, 2 pending
	// sectors, 38 °C", "NVMe critical warning 0x04 (reliability degraded),
	// 3% used, 41 °C", "SMART unavailable: ...".
	Detail string
	// Warnings are what an operator should look at on a disk that still
	// passes: pending or offline-uncorrectable sectors, an NVMe critical
	// warning or media errors, errors in the device's logs.
	Warnings []string
	// Status is smartctl's exit status.
	Status int
}

// Error is a disk whose SMART health could not be read.
type Error struct {
	Device string
	Status int    // smartctl's exit status; -1 when it did not run to its end
	Msg    string // smartctl's messages, or why it did not run
	// Unsupported: the device has no SMART smartctl can reach (a virtual
	// disk, a USB bridge it does not know): not a fault of the disk.
	Unsupported bool
}

func (e *Error) Error() string {
	if e.Status < 0 {
		return fmt.Sprintf("smartctl %s: %s", e.Device, e.Msg)
	}
	return fmt.Sprintf("smartctl %s: exit status %d: %s", e.Device, e.Status, e.Msg)
}

// Exit status bits (man smartctl).
const (
	bitCmdLine    = 1 << 0
	bitOpen       = 1 << 1
	bitCommand    = 1 << 2
	bitFailing    = 1 << 3
	bitPrefail    = 1 << 4
	bitPastThresh = 1 << 5
	bitErrorLog   = 1 << 6
	bitSelfTest   = 1 << 7
)

// Available reports whether smartctl can be run: a Run of the caller's,
// or the binary found.
func Available(opt Options) bool {
	if opt.Run != nil {
		return true
	}
	_, err := lookPath(opt.Path)
	return err == nil
}

// lookPath finds the smartctl binary.
func lookPath(path string) (string, error) {
	if path != "" {
		return exec.LookPath(path)
	}
	p, err := exec.LookPath("smartctl")
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		c := filepath.Join(dir, "smartctl")
		if fi, e := os.Stat(c); e == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", err
}

// args are smartctl's arguments for dev ("/dev/sda"), with -d typ unless
// typ is "".
func args(dev, typ string) []string {
	args := []string{"--json=c", "-H", "-A", "-i"}
	if typ != "" {
		args = append(args, "-d", typ)
	}
	return append(args, dev)
}

// Read reads the SMART health of dev ("sda" or "/dev/sda"): smartctl
// --json=c -H -A -i /dev/sda. A disk smartctl cannot read (exit status bit
// 0 or 1, no JSON, not run) is an *Error, with the Health known so far
// (Device, and Detail saying why); a disk without SMART support is no
// error, with Passed nil.
func Read(ctx context.Context, dev string, opt Options) (Health, error) {
	if !strings.HasPrefix(dev, "/") {
		dev = "/dev/" + dev
	}
	h := Health{Device: dev}
	if strings.ContainsAny(dev, " \t\n") || strings.HasPrefix(filepath.Base(dev), "-") {
		return h, &Error{Device: dev, Status: -1, Msg: "not a device path"}
	}
	run, name := opt.Run, opt.Path
	if run == nil {
		p, err := lookPath(opt.Path)
		if err != nil {
			h.Detail = "smartctl not found"
			return h, &Error{Device: dev, Status: -1, Msg: "smartctl not found (install smartmontools)"}
		}
		run, name = execRunner(opt.Timeout), p
	} else if name == "" {
		name = "smartctl"
	}
	h, err := read(ctx, run, name, dev, opt.Type)
	if opt.Type == "" && unknownBridge(err) {
		// A USB bridge smartctl's database does not know: most speak SAT.
		if h2, err2 := read(ctx, run, name, dev, "sat"); err2 == nil {
			return h2, nil
		}
	}
	return h, err
}

func unknownBridge(err error) bool {
	var e *Error
	return errors.As(err, &e) && strings.Contains(e.Msg, "Unknown USB bridge")
}

// read runs smartctl once and judges its output.
func read(ctx context.Context, run func(context.Context, string, ...string) ([]byte, int, error), name, dev, typ string) (Health, error) {
	h := Health{Device: dev}
	out, status, err := run(ctx, name, args(dev, typ)...)
	if err != nil {
		h.Detail = clip("SMART not read: "+err.Error(), maxDetail)
		return h, &Error{Device: dev, Status: -1, Msg: clip(err.Error(), maxDetail)}
	}
	h.Status = status
	var doc report
	if len(out) > maxOutput {
		h.Detail = "SMART not read: smartctl's output is too large"
		return h, &Error{Device: dev, Status: status, Msg: fmt.Sprintf("output of %d bytes, more than %d", len(out), maxOutput)}
	}
	if err := json.Unmarshal(out, &doc); err != nil || doc.Smartctl == nil {
		msg := "no JSON output (smartctl older than 7?)"
		if err != nil {
			msg = "output is not JSON (smartctl older than 7?): " + err.Error()
		}
		if t := strings.TrimSpace(string(out)); t != "" && err != nil {
			msg += ": " + clean(firstLine(t), 120)
		}
		h.Detail = clip("SMART not read: "+msg, maxDetail)
		return h, &Error{Device: dev, Status: status, Msg: msg}
	}
	if status == 0 && doc.Smartctl.ExitStatus != 0 {
		status, h.Status = doc.Smartctl.ExitStatus, doc.Smartctl.ExitStatus
	}
	h.Type = clean(doc.Device.Type, 32)
	h.Serial = clean(doc.SerialNumber, maxField)
	h.Model = clean(firstNonEmpty(doc.ModelName, strings.TrimSpace(doc.SCSIVendor+" "+doc.SCSIProduct)), maxField)
	errs := doc.messages("error")

	if status&(bitCmdLine|bitOpen) != 0 {
		msg := strings.Join(errs, "; ")
		if msg == "" {
			msg = "device open failed"
			if status&bitCmdLine != 0 {
				msg = "command line refused"
			}
		}
		unsupported := strings.Contains(msg, "Unable to detect device type") || strings.Contains(msg, "Unknown USB bridge") ||
			strings.Contains(msg, "Please specify device type")
		h.Detail = clip(yes(unsupported, "SMART unavailable: ", "SMART not read: ")+msg, maxDetail)
		return h, &Error{Device: dev, Status: status, Msg: clip(msg, maxDetail), Unsupported: unsupported}
	}

	var parts, warns []string
	if doc.SmartStatus != nil && doc.SmartStatus.Passed != nil {
		p := *doc.SmartStatus.Passed
		h.Passed = &p
	}
	if status&bitFailing != 0 {
		f := false
		h.Passed = &f
	}
	if h.Passed == nil {
		why := "SMART unavailable"
		if doc.SmartSupport != nil && doc.SmartSupport.Available != nil && *doc.SmartSupport.Available &&
			doc.SmartSupport.Enabled != nil && !*doc.SmartSupport.Enabled {
			why = "SMART disabled (smartctl -s on " + dev + ")"
		}
		for _, m := range append(errs, doc.messages("information")...) {
			if strings.Contains(m, "SMART") {
				why += ": " + m
				break
			}
		}
		h.Detail = clip(why, maxDetail)
		return h, nil
	}

	// ATA: the sector counters and the attributes failing now.
	attr := map[int]uint64{}
	var failing []string
	if doc.ATA != nil {
		for _, a := range doc.ATA.Table {
			attr[a.ID] = a.Raw.Value
			if a.WhenFailed == "FAILING_NOW" {
				failing = append(failing, clean(a.Name, 64))
			}
		}
	}
	var sectors []string
	if n := attr[5]; n > 0 {
		sectors = append(sectors, fmt.Sprintf("%d reallocated", n))
	}
	if n := attr[197]; n > 0 {
		sectors = append(sectors, fmt.Sprintf("%d pending", n))
		warns = append(warns, fmt.Sprintf("%d sector(s) pending reallocation (Current_Pending_Sector)", n))
	}
	if n := attr[198]; n > 0 {
		sectors = append(sectors, fmt.Sprintf("%d offline-uncorrectable", n))
		warns = append(warns, fmt.Sprintf("%d offline-uncorrectable sector(s) (Offline_Uncorrectable)", n))
	}
	if len(sectors) > 0 {
		parts = append(parts, strings.Join(sectors, ", ")+" sectors")
	}
	if n := doc.SCSIGrownDefects; n != nil && *n > 0 {
		parts = append(parts, fmt.Sprintf("%d grown defects", *n))
	}
	if len(failing) > 0 {
		parts = append(parts, "failing now: "+strings.Join(failing, ", "))
	}

	// NVMe: the health log.
	if l := doc.NVMe; l != nil {
		if l.CriticalWarning != 0 {
			w := fmt.Sprintf("NVMe critical warning 0x%02x", l.CriticalWarning)
			if why := criticalWarning(l.CriticalWarning); why != "" {
				w += " (" + why + ")"
			}
			parts = append(parts, w)
			warns = append(warns, w)
		}
		if l.MediaErrors > 0 {
			parts = append(parts, fmt.Sprintf("%d media errors", l.MediaErrors))
			warns = append(warns, fmt.Sprintf("%d media and data integrity error(s)", l.MediaErrors))
		}
		parts = append(parts, fmt.Sprintf("%d%% used", l.PercentageUsed))
	}
	if t := doc.Temperature; t != nil && t.Current != nil {
		parts = append(parts, fmt.Sprintf("%d °C", *t.Current))
	}

	switch {
	case status&bitPrefail != 0:
		warns = append(warns, "prefail attributes at or below their threshold now")
		if len(failing) == 0 {
			parts = append(parts, "prefail attributes at or below threshold")
		}
	case status&bitPastThresh != 0:
		warns = append(warns, "attributes were at or below their threshold in the past")
	}
	if status&bitErrorLog != 0 {
		warns = append(warns, "the device's error log has entries (smartctl -l error "+dev+")")
	}
	if status&bitSelfTest != 0 {
		warns = append(warns, "the self-test log has errors (smartctl -l selftest "+dev+")")
	}
	if status&bitCommand != 0 {
		m := "a SMART command failed or a data structure had a bad checksum"
		if len(errs) > 0 {
			m += ": " + strings.Join(errs, "; ")
		}
		warns = append(warns, clip(m, maxDetail))
	}
	h.Detail = clip(strings.Join(parts, ", "), maxDetail)
	h.Warnings = warns
	return h, nil
}

// criticalWarning names the bits of an NVMe critical warning.
func criticalWarning(v int) string {
	names := []string{"spare below threshold", "temperature", "reliability degraded", "read-only", "volatile memory backup failed", "persistent memory read-only"}
	var out []string
	for i, n := range names {
		if v&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ", ")
}

// report is the part of smartctl's JSON that is read.
type report struct {
	Smartctl *struct {
		ExitStatus int `json:"exit_status"`
		Messages   []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
	} `json:"smartctl"`
	Device struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"device"`
	ModelName    string `json:"model_name"`
	SCSIVendor   string `json:"scsi_vendor"`
	SCSIProduct  string `json:"scsi_product"`
	SerialNumber string `json:"serial_number"`
	SmartSupport *struct {
		Available *bool `json:"available"`
		Enabled   *bool `json:"enabled"`
	} `json:"smart_support"`
	SmartStatus *struct {
		Passed *bool `json:"passed"`
	} `json:"smart_status"`
	Temperature *struct {
		Current *int `json:"current"`
	} `json:"temperature"`
	ATA *struct {
		Table []struct {
			ID         int    `json:"id"`
			Name       string `json:"name"`
			WhenFailed string `json:"when_failed"`
			Raw        struct {
				Value uint64 `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	NVMe *struct {
		CriticalWarning int    `json:"critical_warning"`
		MediaErrors     uint64 `json:"media_errors"`
		PercentageUsed  int    `json:"percentage_used"`
	} `json:"nvme_smart_health_information_log"`
	SCSIGrownDefects *uint64 `json:"scsi_grown_defect_list"`
}

// messages are smartctl's messages of a severity, made safe to show.
func (r *report) messages(severity string) []string {
	var out []string
	for _, m := range r.Smartctl.Messages {
		if m.Severity == severity && strings.TrimSpace(m.String) != "" {
			out = append(out, clean(m.String, 200))
		}
	}
	return out
}

// execRunner runs a command with a timeout, returning its standard output
// and exit status; a command that exits non-zero is no error (smartctl's
// status is a bit mask).
func execRunner(timeout time.Duration) func(context.Context, string, ...string) ([]byte, int, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return func(parent context.Context, name string, args ...string) ([]byte, int, error) {
		ctx, cancel := context.WithTimeout(parent, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = []string{"LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.WaitDelay = 2 * time.Second
		out, err := cmd.Output()
		switch {
		case parent.Err() != nil:
			return out, -1, fmt.Errorf("stopped: %w", parent.Err())
		case ctx.Err() != nil:
			return out, -1, fmt.Errorf("no answer within %s", timeout)
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return out, ee.ExitCode(), nil
		}
		if err != nil {
			return out, -1, err
		}
		return out, 0, nil
	}
}

// clean makes a string from a disk or smartctl safe to show: one line,
// printable, trimmed, at most max bytes.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	return clip(strings.Join(strings.Fields(s), " "), max)
}

// clip cuts s at max bytes, at the start of a character.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max - len("…")
	for n > 0 && (s[n]&0xc0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func yes(b bool, y, n string) string {
	if b {
		return y
	}
	return n
}
