package metrics

import (
	"github.com/sentryha/sentry/internal/readiness"
)

// FromReadiness is the Snapshot of a verdict and of the facts it was judged
// on (both nodes, as node self knows them): what the agent's readiness
// component keeps of its last judgement. applyFailures is the counter of
// this node's failed applies; no weekly report exists yet, so the report
// series are left out.
func FromReadiness(self string, in *readiness.Input, res readiness.Result, applyFailures int) Snapshot {
	s := Snapshot{Node: self, Verdict: string(res.Verdict), VerdictAt: res.At, ConfigApplyFailures: applyFailures, Drift: "unknown"}
	for _, f := range res.Findings {
		s.Checks = append(s.Checks, Check{Name: f.Check, State: string(f.State), Blocks: f.Blocking()})
		if f.Check == "packages" {
			switch f.State {
			case readiness.Pass:
				s.Drift = "in-step"
			case readiness.Fail:
				s.Drift = "drifted"
			}
		}
	}
	if in == nil {
		return s
	}
	for _, n := range []*readiness.Node{in.Primary, in.Secondary} {
		if n == nil {
			continue
		}
		if n.Name == self {
			s.Role = n.Role
		} else {
			s.Peer = n.Name
		}
		for _, p := range n.Probes {
			s.Probes = append(s.Probes, Probe{Node: n.Name, Name: p.Name, OK: p.OK, Duration: p.Duration, At: p.At})
		}
		if n.RAID != nil {
			for _, a := range n.RAID.Arrays {
				s.RAID = append(s.RAID, RAID{Node: n.Name, Array: a.Name, Members: a.Members, Up: a.Up, Action: a.Action})
			}
		}
	}
	if in.Primary != nil {
		s.ConfigHeadAt = in.Primary.ConfigHeadAt
	}
	if in.Secondary != nil {
		s.ConfigFailed = in.Secondary.ConfigFailed != ""
	}
	for _, c := range in.Compat {
		s.Compat = append(s.Compat, Compat{DiskSet: c.DiskSet, Machine: c.Machine, Boots: c.Boots})
	}
	if s.Peer != "" {
		s.PeerReachable, s.PeerLastContact = in.PeerReachable, in.PeerContact
	}
	return s
}
