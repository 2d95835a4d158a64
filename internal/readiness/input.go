package readiness

import "time"

// Input is everything the checks judge: a snapshot of both nodes as this
// node knows them. The agent fills it from its components; each fact
// carries when it was measured, so a check can tell fresh from stale.
type Input struct {
	Now time.Time
	// Freshness is the default window of evidence (0: DefaultFreshness).
	Freshness time.Duration

	// Primary and Secondary are the two nodes by role, as their stamps
	// say. Either may be nil: not paired yet, or the peer never heard.
	Primary   *Node
	Secondary *Node
	// Self is the name of the node that judges.
	Self string

	// Link: the peer as seen from Self.
	PeerReachable bool
	PeerContact   time.Time // last successful exchange
	PeerError     string
	// ClockOffset is the peer's clock minus this node's, measured at
	// PeerContact (half the round trip taken off); nil: not measured.
	ClockOffset *time.Duration
	// ClockBound is the largest offset allowed (0: 2 s).
	ClockBound time.Duration

	// Packages: the drift between the two nodes' packages, kernels and
	// firmware, from the newer of the two inventories (At).
	Packages PackageFacts
	// Compat: each disk set on the other machine.
	Compat []CompatFacts
	// Boot network adaptation and loaders, per node: in Node.

	// PeerVerdict is the peer's own verdict as last heard (not judged
	// here: carried into the Result, so that either node shows both).
	PeerVerdict *PeerVerdict
}

// Node is one node's facts.
type Node struct {
	Name       string
	Role       string // "primary", "secondary", "" (unknown)
	Generation uint64
	StampError string // the stamp could not be read: why
	SafeMode   string // the node is held in safe mode: why
	StatusAt   time.Time

	// Config sync (the secondary's fields are what matter).
	ConfigHead    string    // the primary's head (as the node knows it)
	ConfigHeadAt  time.Time // when the primary committed its head
	ConfigApplied string    // secondary: the commit applied last
	ConfigFailed  string    // secondary: the commit that failed to apply
	ConfigError   string
	ConfigRetry   string // a failure that may clear: when it is tried again
	ConfigDrift   int    // tracked paths edited locally
	ConfigAt      time.Time

	// Verifier: the newest result of each probe, and the probes the
	// selected modules ask for.
	Probes   []Probe
	Expected []string
	// Reloads: probes whose last failure overlapped a reload the sync
	// itself made (not a fault: the schedule probes them again).
	ReloadDisturbed []string

	// Modules in use, by name: version; and what awaits approval.
	Modules         map[string]string
	ModulesAt       time.Time
	BoundaryPending []string

	InventoryAt  time.Time
	InventoryErr string

	RAID    *RAIDFacts   // nil: not read
	Disks   []DiskHealth // SMART, where it can be read
	DisksAt time.Time
	Backup  *BackupFacts // nil: no restore test made (none configured)
	Loaders *LoaderFacts // nil: not read
	Network *NetFacts    // nil: not read
}

// Probe is the newest result of one probe.
type Probe struct {
	Name     string
	OK       bool
	Message  string
	At       time.Time
	Duration time.Duration
}

// PackageFacts is the package drift between the nodes.
type PackageFacts struct {
	At    time.Time
	Err   string
	Diffs []PackageDiff
}

// PackageDiff is one package, kernel or firmware that differs.
type PackageDiff struct {
	Kind      string // "package", "kernel", "firmware"
	Name      string
	Primary   string // version on the primary, "" if absent
	Secondary string
	// Allowed: the operator declared this difference allowed, with Reason.
	Allowed bool
	Reason  string
}

// CompatFacts says whether one disk set boots on the other machine.
type CompatFacts struct {
	DiskSet string // node the disk set was taken on
	Machine string
	Boots   string // "yes", "no", "unknown"
	Because []string
	At      time.Time
}

// RAIDFacts are a node's md arrays (/proc/mdstat).
type RAIDFacts struct {
	At     time.Time
	Arrays []Array
}

// Array is one md array.
type Array struct {
	Name    string // md0
	Level   string // raid1
	Members int    // devices the array should have
	Up      int    // devices in sync
	// Action: "", "recover", "resync", "reshape", "check", "repair".
	Action   string
	Progress string // "12.5%" while Action runs
	Failed   []string
}

// DiskHealth is one disk's SMART verdict.
type DiskHealth struct {
	Device string
	Serial string
	// Passed: SMART overall-health self-assessment; nil: unreadable.
	Passed *bool
	Detail string
}

// BackupFacts are a node's last restore test of its backups: the newest
// failed one of a repository still configured, else the newest. The
// backups' freshness is the backup probe's (verify.green).
type BackupFacts struct {
	At         time.Time // when the test ran
	Repo       string
	Snapshot   string
	RestoreErr string // "": good
}

// LoaderFacts say whether a disk set can boot without this machine's
// NVRAM: the firmware's boot entries stay with the machine.
type LoaderFacts struct {
	At   time.Time
	Mode string // "uefi", "bios"
	// ESPs: each EFI system partition of the disk set (UEFI).
	ESPs []ESP
	// GRUBDisks: member disks and whether GRUB is in their boot area (BIOS).
	GRUBDisks map[string]bool
}

// ESP is one EFI system partition.
type ESP struct {
	Device   string
	Fallback bool   // EFI/BOOT/BOOTX64.EFI is there
	Digest   string // of the partition's files, to tell ESPs in step
}

// NetFacts say whether the boot check's network adaptation covers the
// way the node's network is configured.
type NetFacts struct {
	At      time.Time
	Method  string // "systemd-networkd", "ifupdown", "NetworkManager", ""
	Covered bool
	Detail  string
}
