// Package tui is the operator's terminal UI (bubbletea): the
// readiness verdict and both nodes, the services by node, the
// configuration sync, the packages, the failover record, the modules the
// agent reports and the events, read from the local agent's API only.
//
// It follows the agent's event stream and refetches only what an event
// concerns; with the agent down or gone it says so, keeps what it has and
// reconnects by itself. Its Reports screen does not show the weekly
// reports yet; `sentry report` does.
package tui
