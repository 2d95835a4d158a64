// Package tui is the operator's terminal UI (`sentry tui`): the
// readiness verdict and both nodes, the services by node, the
// configuration sync, the packages, the failover record, the modules the
// agent reports and the events, read from the local agent's API only.
//
// It follows the agent's event stream and refetches only what an event
// concerns; with the agent down or gone it says so, keeps what it has and
// reconnects by itself.
//
// The Modules screen lists every module (GET /v1/modules, as `sentry
// modules list` shows them) with its versions, the one in use, pinned,
// disabled and what a secondary holds back; u selects the version under
// the cursor and R rolls the module back to the version used before
// (POST /v1/modules/use and /rollback), each after a [y/N] question, on
// the primary only. The Reports screen lists the weekly reports both
// nodes keep (the peer's error said when it does not answer); enter
// opens one as `sentry report` prints it (the text format: laid out for
// 80 columns in ASCII, so it reads on the Linux console; Markdown through
// glamour draws box glyphs there whatever TERM says, and glamour added
// about 10 MB to a binary and 14 MB to the resident set of one render),
// and c builds this week's so far.
//
// A day of results is kept as series (start, latency, outcome) and the
// histories are fetched two at a time: with Run's soft memory limit the
// UI stays under 40 MB of resident set (BenchmarkStartup).
//
// It is built on bubbletea, bubbles and lipgloss v2, which ask the
// terminal nothing when their packages load: bubbletea v1's init asked
// for the background colour and waited up to 5 s for the answer, in every
// command of a binary that links it, and read the keys typed ahead.
// Nothing here asks for it either: the colours are the terminal's basic
// ones (red, green, yellow, cyan), which read on a dark background and a
// light one alike.
package tui
