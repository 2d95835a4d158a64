// Package bootcheck decides at boot, from the disk stamp and the hardware, which role the node takes, adapts the network, or holds in a safe mode.
//
// Nothing is implemented here yet: this package is planned by issue(s) 7
// (see docs/design.md). Its folder exists so the layout of the repository is
// the one the design describes.
package bootcheck
