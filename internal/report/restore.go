package report

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/store"
)

// EventRestoreTest is the kind of the event that records a restore test.
const EventRestoreTest = "restore-test"

// RestoreRun is one weekly test of a backup repository: a slice of its
// data checked (restic check --read-data-subset) and a sample of files
// restored into a temporary folder and compared with the snapshot. The
// test itself is made elsewhere; the report reads the runs from the
// events it records (Event).
type RestoreRun struct {
	At       time.Time `json:"at"`
	Node     string    `json:"node"`
	Repo     string    `json:"repo"`
	Snapshot string    `json:"snapshot,omitempty"`
	// Subset is the slice of the data read back and checked ("3/52"),
	// CheckedPacks how many data packs that was.
	Subset       string `json:"subset,omitempty"`
	CheckedPacks int    `json:"checked_packs,omitempty"`
	// CheckedBytes is the size of the files restored and compared.
	CheckedBytes int64 `json:"checked_bytes,omitempty"`
	// FilesRestored were restored, FilesCompared compared with the
	// snapshot, Mismatches those that differ.
	FilesRestored int      `json:"files_restored"`
	FilesCompared int      `json:"files_compared"`
	Mismatches    []string `json:"mismatches,omitempty"`
	DurationS     float64  `json:"duration_s,omitempty"`
	// Skipped says why the run did not test (a repository locked by a
	// running backup): retried later, not a failure.
	Skipped string `json:"skipped,omitempty"`
	// Error is the failure ("" when the run was good or skipped).
	Error string `json:"error,omitempty"`
	// Command re-runs the test by hand.
	Command string `json:"command,omitempty"`
}

// Outcome is "good", "skipped" or "FAILED".
func (r RestoreRun) Outcome() string {
	switch {
	case r.Error != "" || len(r.Mismatches) > 0:
		return "FAILED"
	case r.Skipped != "":
		return "skipped"
	}
	return "good"
}

// Event is the store event that records the run.
func (r RestoreRun) Event() (store.Event, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return store.Event{}, err
	}
	msg := fmt.Sprintf("restore test of %s: %s", r.Repo, r.Outcome())
	switch {
	case r.Error != "":
		msg += ": " + r.Error
	case len(r.Mismatches) > 0:
		msg += fmt.Sprintf(": %d of %d files differ from the snapshot", len(r.Mismatches), r.FilesCompared)
	case r.Skipped != "":
		msg += ": " + r.Skipped
	}
	return store.Event{Time: r.At, Kind: EventRestoreTest, Node: r.Node, Message: msg, Fields: map[string]string{"run": string(b)}}, nil
}

// Why is what failed ("" when the run was good or skipped).
func (r RestoreRun) Why() string {
	if r.Error != "" {
		return r.Error
	}
	if len(r.Mismatches) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d files differ from the snapshot (%s)", len(r.Mismatches), r.FilesCompared, strings.Join(r.Mismatches, ", "))
}

// RestoreOf decodes the run an event records.
func RestoreOf(e store.Event) (RestoreRun, error) {
	var r RestoreRun
	if err := json.Unmarshal([]byte(e.Fields["run"]), &r); err != nil {
		return r, fmt.Errorf("event %d (%s at %s): %w", e.Seq, e.Kind, e.Time.UTC().Format(time.RFC3339), err)
	}
	return r, nil
}
