// Package tui is the operator's terminal UI (bubbletea): status of both
// nodes, the guided swap-disks-and-reboot failover, the weekly report.
//
// Nothing is implemented here yet, and no issue plans it so far; its folder
// exists so the layout of the repository is the one the design describes.
package tui
