// Package api is the typed, versioned model of the cluster's state: what
// the agent's local API answers to GET /v1/status, what `sentry status
// --json` prints, and what the CLI and the TUI read.
//
// The schema is stable within a version: fields are added, never renamed
// or given another meaning; a change that would break a reader raises
// Version. Optional fields are left out when empty. Times are RFC 3339.
//
// Version 1:
//
//	{
//	  "version": 1,
//	  "initialized": true,             // this disk set belongs to a cluster
//	  "cluster_id": "...", "cluster_name": "office",
//	  "nodes": [ Node, Node ],         // side by side: the primary first, then the secondary
//	  "hint": "...",                   // what to do next, when something is missing
//	  "safe_mode": "...",              // why this node holds its role's services
//	  "link":   Link,                  // this node's view of the peer link
//	  "sync":   Sync,                  // the configuration sync, both sides
//	  "verify": Verify,                // the verifiers, both nodes
//	  "parity": Parity,                // the package inventories, both nodes
//	  "boot":   Boot                   // this node's boot decision
//	}
package api

import "time"

// Version is the schema version of State.
const Version = 1

// State is the cluster's state as one node sees it.
type State struct {
	Version     int    `json:"version"`
	Initialized bool   `json:"initialized"`
	ClusterID   string `json:"cluster_id,omitempty"`
	ClusterName string `json:"cluster_name,omitempty"`
	// Nodes: this node, and the peer once one joined; the primary first.
	Nodes []Node `json:"nodes"`
	Hint  string `json:"hint,omitempty"`
	// SafeMode is set when this node holds its role's services, with why.
	SafeMode string `json:"safe_mode,omitempty"`

	// Summaries (nil when there is nothing to sum up).
	Link   *Link   `json:"link,omitempty"`
	Sync   *Sync   `json:"sync,omitempty"`
	Verify *Verify `json:"verify,omitempty"`
	Parity *Parity `json:"parity,omitempty"`
	Boot   *Boot   `json:"boot,omitempty"`
}

// Node is one node: this one as it is, the peer as it last said.
type Node struct {
	Name         string     `json:"name"`
	Self         bool       `json:"self"`
	Role         string     `json:"role"` // "primary", "secondary", or "" before init
	Hardware     string     `json:"hardware"`
	DiskSet      string     `json:"disk_set"`
	Generation   uint64     `json:"generation"`
	AgentVersion string     `json:"agent_version"`
	Address      string     `json:"address,omitempty"`
	Reachable    bool       `json:"reachable"`
	LastContact  *time.Time `json:"last_contact,omitempty"`
	Error        string     `json:"error,omitempty"`
	// Configuration sync: the primary's head as this node knows it, and on
	// the secondary the commit applied last and the one that failed.
	ConfigHead    string `json:"config_head,omitempty"`
	ConfigApplied string `json:"config_applied,omitempty"`
	ConfigFailed  string `json:"config_failed,omitempty"`
	ConfigError   string `json:"config_error,omitempty"`
	ConfigRetry   string `json:"config_retry,omitempty"` // a failure that may clear by itself: when it is tried again
	// BoundaryPending: what the primary's modules ask beyond what this
	// secondary approved (sentry modules approve).
	BoundaryPending []string `json:"boundary_pending,omitempty"`
	ConfigDrift     int      `json:"config_drift,omitempty"`
	Verify          string   `json:"verify,omitempty"`
	VerifyRed       []string `json:"verify_red,omitempty"`
	// The boot decision; SafeMode is why the role's services are held.
	Boot     string `json:"boot,omitempty"`
	SafeMode string `json:"safe_mode,omitempty"`
	Failover bool   `json:"failover,omitempty"`
}

// Link is this node's view of the peer link.
type Link struct {
	Peer        string     `json:"peer"`
	Address     string     `json:"address,omitempty"`
	Reachable   bool       `json:"reachable"`
	LastContact *time.Time `json:"last_contact,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// Sync sums up the configuration sync of both nodes.
type Sync struct {
	// Head is the primary's newest commit; Applied the secondary's last
	// applied one; InStep is true when they are the same.
	Head    string `json:"head,omitempty"`
	Applied string `json:"applied,omitempty"`
	InStep  bool   `json:"in_step"`
	// Failed is the commit the secondary could not apply, Error why, and
	// Retry when it is tried again (a cause that may clear by itself).
	Failed string `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	Retry  string `json:"retry,omitempty"`
	// Drift: tracked paths edited locally, by node name.
	Drift map[string]int `json:"drift,omitempty"`
	// BoundaryPending: what the secondary holds back until approved.
	BoundaryPending []string `json:"boundary_pending,omitempty"`
}

// Verify sums up both nodes' verifiers.
type Verify struct {
	Nodes []VerifyNode `json:"nodes"`
	Red   int          `json:"red"` // red probes, all nodes
}

// VerifyNode is one node's verifier.
type VerifyNode struct {
	Node    string   `json:"node"`
	Summary string   `json:"summary,omitempty"`
	Red     []string `json:"red,omitempty"`
}

// Parity sums up both nodes' package inventories (`sentry parity` has the
// drift and the plan).
type Parity struct {
	Self Inventory `json:"self"`
	Peer Inventory `json:"peer"`
}

// Inventory is one node's newest inventory at a glance.
type Inventory struct {
	Node     string    `json:"node,omitempty"`
	Taken    time.Time `json:"taken,omitzero"`
	Packages int       `json:"packages"`
	Kernel   string    `json:"kernel,omitempty"`
	// Error is why the newest could not be taken or fetched; the one
	// summed up is then the last good one.
	Error string `json:"error,omitempty"`
}

// Boot is this node's boot decision (bootcheck).
type Boot struct {
	Decision     string   `json:"decision,omitempty"` // primary, secondary, safe-mode
	Reason       string   `json:"reason,omitempty"`
	SafeMode     string   `json:"safe_mode,omitempty"`
	Failover     bool     `json:"failover,omitempty"`
	Hardware     string   `json:"hardware,omitempty"`
	HomeHardware string   `json:"home_hardware,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// Summarize fills Link, Sync and Verify from the nodes.
func (s *State) Summarize() {
	s.Version = Version
	s.Link, s.Sync, s.Verify = nil, nil, nil
	var primary, secondary *Node
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if !n.Self && s.Link == nil {
			s.Link = &Link{Peer: n.Name, Address: n.Address, Reachable: n.Reachable, LastContact: n.LastContact, Error: n.Error}
		}
		switch n.Role {
		case "primary":
			primary = n
		case "secondary":
			secondary = n
		}
		if n.Verify != "" || len(n.VerifyRed) > 0 {
			if s.Verify == nil {
				s.Verify = &Verify{}
			}
			s.Verify.Nodes = append(s.Verify.Nodes, VerifyNode{Node: n.Name, Summary: n.Verify, Red: n.VerifyRed})
			s.Verify.Red += len(n.VerifyRed)
		}
		if n.ConfigDrift > 0 {
			if s.Sync == nil {
				s.Sync = &Sync{}
			}
			if s.Sync.Drift == nil {
				s.Sync.Drift = map[string]int{}
			}
			s.Sync.Drift[n.Name] = n.ConfigDrift
		}
	}
	if primary == nil && secondary == nil {
		return
	}
	if s.Sync == nil {
		s.Sync = &Sync{}
	}
	if primary != nil {
		s.Sync.Head = primary.ConfigHead
	}
	if secondary != nil {
		s.Sync.Applied, s.Sync.Failed, s.Sync.Error, s.Sync.Retry = secondary.ConfigApplied, secondary.ConfigFailed, secondary.ConfigError, secondary.ConfigRetry
		s.Sync.BoundaryPending = secondary.BoundaryPending
		if s.Sync.Head == "" {
			s.Sync.Head = secondary.ConfigHead // the primary's head, as the secondary knows it
		}
	}
	s.Sync.InStep = s.Sync.Head != "" && s.Sync.Head == s.Sync.Applied
}
