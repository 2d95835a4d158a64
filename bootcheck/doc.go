// Package bootcheck decides at boot, from the disk stamp and the hardware,
// which role the node takes (primary, secondary or safe mode), adapts the
// network to the NICs it finds, and makes the one bounded check before
// taking the primary role (an ARP probe of the primary's addresses and one
// hello to the peer agent). The decision and its evidence are written to
// /run/sentry for the role's units, the agent and `sentry bootcheck
// explain`; a run over its time budget writes a safe-mode decision instead.
// See docs/design.md ("Bootcheck") and the runbook in docs/operations.md.
package bootcheck
