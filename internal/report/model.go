// Package report makes Sentry's weekly compatibility report (issue 16):
// from what the agent's store holds (the probes' rollups, the verdict's
// changes, configuration, package and failover records, the restore
// tests) it builds one model of an ISO week, renders it as text,
// Markdown, HTML or JSON, draws its charts as PNG and builds the mail
// (multipart/alternative, the HTML with its charts inline by Content-ID).
//
// Weeks are ISO weeks in UTC, as the store's rollups are. A figure the
// history cannot give is "not enough data", never a zero.
package report

import (
	"encoding/json"
	"time"
)

// FormatVersion is the version of the report's JSON document.
const FormatVersion = 1

// NoData is what the report says where the history gives no figure.
const NoData = "not enough data"

// Report is the weekly report, in the order issue 16 gives its sections.
type Report struct {
	Version int       `json:"version"`
	Cluster string    `json:"cluster"`
	Node    string    `json:"node,omitempty"` // the node whose verdicts are reported
	Week    string    `json:"week"`           // "2026-W49"
	From    time.Time `json:"from"`           // Monday 00:00 UTC
	To      time.Time `json:"to"`             // the next Monday 00:00 UTC
	// Until is where the data ends: To, or the time the report was made
	// in a week not over (Partial).
	Until   time.Time `json:"until"`
	Made    time.Time `json:"made"`
	Partial bool      `json:"partial,omitempty"`
	// NoHistory: the store holds no history at all yet.
	NoHistory bool `json:"no_history,omitempty"`

	Verdict   VerdictSection  `json:"verdict"`
	Actions   []Action        `json:"actions"`
	Services  ServiceSection  `json:"services"`
	Config    ConfigSection   `json:"config"`
	Packages  PackageSection  `json:"packages"`
	Compat    FindingSection  `json:"compat"`
	Modules   FindingSection  `json:"modules"`
	Disks     DiskSection     `json:"disks"`
	Failovers FailoverSection `json:"failovers"`
	Backups   BackupSection   `json:"backups"`
	Compare   Comparison      `json:"week_over_week"`
	// Notes are what the report could not read (a damaged record,
	// named) and other remarks.
	Notes []string `json:"notes,omitempty"`
}

// VerdictSection is the verdict now and over the week.
type VerdictSection struct {
	// Now is the verdict at the end of the period, NowAt when it was
	// judged, NowReasons its blocking reasons ("" Now: none known).
	Now        string    `json:"now,omitempty"`
	NowAt      time.Time `json:"now_at,omitzero"`
	NowReasons []string  `json:"now_reasons,omitempty"`
	// Known: a verdict is known for some of the week; the figures below
	// are only meaningful then.
	Known bool `json:"known"`
	// ReadyShare is the share (0..1) of Covered spent READY.
	ReadyShare float64 `json:"ready_share"`
	CoveredS   int64   `json:"covered_s"` // seconds with a known verdict
	SpanS      int64   `json:"span_s"`    // seconds from From to Until
	Spells     []Spell `json:"spells"`
	// Segments are the verdict's spans, for the chart.
	Segments []Segment `json:"segments"`
}

// Spell is one stretch of the week not READY.
type Spell struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	DurationS int64     `json:"duration_s"`
	Verdict   string    `json:"verdict"` // NOT READY, or UNKNOWN if never worse
	Causes    []string  `json:"causes"`
	Ongoing   bool      `json:"ongoing,omitempty"` // still so at Until
}

// Segment is a span with one verdict ("" unknown: no data).
type Segment struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Verdict string    `json:"verdict"`
	Cause   string    `json:"cause,omitempty"`
}

// Action is one recommended action.
type Action struct {
	Rank    int    `json:"rank"`
	What    string `json:"what"`
	Why     string `json:"why"`
	Command string `json:"command"`
}

// ServiceSection is the probes of the week, per service and node.
type ServiceSection struct {
	Rows []ServiceRow `json:"rows"`
	// Hours is the number of hourly columns of the chart (168 a week).
	Hours int `json:"hours"`
}

// ServiceRow is one probe on one node over the week.
type ServiceRow struct {
	Service  string `json:"service"`
	Node     string `json:"node"`
	Kind     string `json:"kind,omitempty"`
	Rounds   int64  `json:"rounds"`
	Failures int64  `json:"failures"`
	// PassRate is (Rounds-Failures)/Rounds; P50, P95 and Max are the
	// latency in milliseconds (P50 and P95 from the fixed histogram).
	PassRate     float64      `json:"pass_rate"`
	P50MS        float64      `json:"p50_ms"`
	P95MS        float64      `json:"p95_ms"`
	MaxMS        int64        `json:"max_ms"`
	FailedPhases []PhaseCount `json:"failed_phases,omitempty"`
	// NoData says why a probe known on the other node has no rounds here.
	NoData string `json:"no_data,omitempty"`
	// Hourly is the week hour by hour, for the chart: a character an
	// hour, HourAllPassed, HourSomeFailed, HourAllFailed or HourNoData.
	Hourly string `json:"hourly,omitempty"`
}

// The characters of ServiceRow.Hourly.
const (
	HourAllPassed  = 'o'
	HourSomeFailed = '~'
	HourAllFailed  = 'x'
	HourNoData     = '.'
)

// PhaseCount is the failures of one phase.
type PhaseCount struct {
	Phase    string `json:"phase"`
	Failures int64  `json:"failures"`
}

// ConfigSection is the configuration sync of the week.
type ConfigSection struct {
	Commits       []ConfigItem `json:"commits"`
	FailedApplies []ConfigItem `json:"failed_applies"`
	Drift         []ConfigItem `json:"drift"` // found on the secondary
	Refused       []ConfigItem `json:"refused,omitempty"`
}

// ConfigItem is one configuration event.
type ConfigItem struct {
	At     time.Time `json:"at"`
	Node   string    `json:"node"`
	Commit string    `json:"commit,omitempty"`
	Paths  []string  `json:"paths,omitempty"`
	Text   string    `json:"text"`
}

// PackageSection is the package parity of the week.
type PackageSection struct {
	// Changes are the parity actions applied (installs, holds, modules).
	Changes []EventItem `json:"changes"`
	// Kernels are the boot kernel changes seen in the inventories.
	Kernels []EventItem `json:"kernels"`
	// DriftNow is the package drift at the end of the period ("" not
	// known), DriftText its detail.
	DriftNow  string `json:"drift_now,omitempty"`
	DriftText string `json:"drift_text,omitempty"`
}

// EventItem is one event, shown as it was recorded.
type EventItem struct {
	At   time.Time `json:"at"`
	Node string    `json:"node"`
	Text string    `json:"text"`
	OK   bool      `json:"ok"`
}

// FindingSection is what the stored verdict says about some checks: the
// cross-boot compatibility both ways, the module versions, RAID and disks.
// Only the verdict judged at the end of the period is kept, so a past
// week has it only if its report was stored then.
type FindingSection struct {
	At       time.Time     `json:"at,omitzero"`
	Findings []FindingView `json:"findings"`
	// Missing says why there is none.
	Missing string `json:"missing,omitempty"`
}

// FindingView is one check's finding with its evidence.
type FindingView struct {
	Check    string   `json:"check"`
	State    string   `json:"state"`
	Reason   string   `json:"reason"`
	Evidence []string `json:"evidence,omitempty"`
	Fix      string   `json:"fix,omitempty"`
}

// DiskSection is RAID state (from the verdict) and free space trends
// (from the probes' free_percent).
type DiskSection struct {
	RAID  FindingSection `json:"raid"`
	Trend []DiskTrend    `json:"free_space"`
}

// DiskTrend is one disk probe's free space over the week.
type DiskTrend struct {
	Service string     `json:"service"`
	Node    string     `json:"node"`
	First   float64    `json:"first_percent"`
	Last    float64    `json:"last_percent"`
	Min     float64    `json:"min_percent"`
	Days    []DayValue `json:"days"`
	// Points are the last reading of each hour, for the chart.
	Points []Point `json:"points"`
}

// DayValue is a day's lowest reading.
type DayValue struct {
	Day string  `json:"day"` // 2026-12-01
	Min float64 `json:"min"`
}

// Point is one reading.
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// FailoverSection is the failovers and drills of the week.
type FailoverSection struct {
	Items []FailoverItem `json:"items"`
}

// FailoverItem is one failover record of the week.
type FailoverItem struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // failover, planned (a drill), failback
	At        time.Time `json:"at"`
	Node      string    `json:"node"`
	From      string    `json:"from_machine"`
	To        string    `json:"to_machine"`
	DowntimeS float64   `json:"downtime_s,omitempty"`
	Downtime  string    `json:"downtime"`
	Complete  bool      `json:"complete"`
	Verdict   string    `json:"verdict_after,omitempty"`
}

// BackupSection is the restore tests of the week.
type BackupSection struct {
	Runs []RestoreRun `json:"runs"`
	// Failing: the last run (this week or before) failed; it is a NOT
	// READY reason until the next good run.
	Failing bool `json:"failing,omitempty"`
}

// Comparison is the week against the one before.
type Comparison struct {
	Previous string `json:"previous"` // its week
	// Known: both weeks have data.
	Known          bool     `json:"known"`
	ReadyShare     *float64 `json:"ready_share,omitempty"`
	PrevReadyShare *float64 `json:"prev_ready_share,omitempty"`
	Failures       int64    `json:"failures"`
	PrevFailures   int64    `json:"prev_failures"`
	Rounds         int64    `json:"rounds"`
	PrevRounds     int64    `json:"prev_rounds"`
	// Trend is "better", "worse" or "the same".
	Trend string   `json:"trend,omitempty"`
	Why   []string `json:"why,omitempty"`
}

// JSON is the report's JSON document (indented).
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
