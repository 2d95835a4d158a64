// Package verifier exercises every service (web, mail, database, file share) end to end on both nodes, all the time.
//
// Nothing is implemented here yet: this package is planned by issue(s) 6
// (see docs/design.md). Its folder exists so the layout of the repository is
// the one the design describes.
package verifier
