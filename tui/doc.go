// Package tui is the operator's terminal UI (`sentry tui`): the
// readiness verdict and both nodes, the services by node, the
// configuration sync, the packages, the failover record, the modules the
// agent reports and the events, read from the local agent's API only.
//
// It follows the agent's event stream and refetches only what an event
// concerns; with the agent down or gone it says so, keeps what it has and
// reconnects by itself. Its Reports screen does not show the weekly
// reports yet; `sentry report` does.
//
// It is built on bubbletea, bubbles and lipgloss v2, which ask the
// terminal nothing when their packages load: bubbletea v1's init asked
// for the background colour and waited up to 5 s for the answer, in every
// command of a binary that links it, and read the keys typed ahead.
// Nothing here asks for it either: the colours are the terminal's basic
// ones (red, green, yellow, cyan), which read on a dark background and a
// light one alike.
package tui
