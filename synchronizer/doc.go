// Package synchronizer keeps the primary's configuration in a git repository and replays it on the secondary, and keeps the secondary's packages, kernel, drivers and firmware matching the primary's.
//
// Nothing is implemented here yet: this package is planned by issue(s) 4,5
// (see docs/design.md). Its folder exists so the layout of the repository is
// the one the design describes.
package synchronizer
