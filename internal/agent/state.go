package agent

import (
	"github.com/sentryha/sentry/bootcheck"
	"github.com/sentryha/sentry/internal/agent/api"
	"github.com/sentryha/sentry/internal/agent/parity"
)

// state is the answer of GET /v1/status: the nodes (status), and the
// summaries of the link, the sync, the verifiers, parity and the boot.
func (a *Agent) state() api.State {
	st := a.status()
	st.Summarize()
	st.Parity = paritySummary(a)
	st.Boot = bootSummary(a)
	return st
}

// paritySummary sums up both inventories (nil before the first).
func paritySummary(a *Agent) *api.Parity {
	self, peer, ok := a.parity.Summaries()
	if !ok {
		return nil
	}
	inv := func(s parity.InventorySummary) api.Inventory {
		return api.Inventory{Node: s.Node, Taken: s.Taken, Packages: s.Packages, Kernel: s.Kernel, Error: s.Error}
	}
	return &api.Parity{Self: inv(self), Peer: inv(peer)}
}

// bootSummary is this node's boot decision (nil without bootcheck).
func bootSummary(a *Agent) *api.Boot {
	res, safe := a.machines.Boot(), a.machines.SafeMode()
	if res == nil && safe == "" {
		return nil
	}
	b := &api.Boot{SafeMode: safe, Hardware: a.hw.ID}
	if res != nil {
		b.Decision, b.Reason, b.Failover, b.HomeHardware, b.Warnings = res.Outcome, res.Reason, res.Failover, res.HomeHardware, res.Warnings
		if res.Hardware != "" {
			b.Hardware = res.Hardware
		}
	}
	if safe != "" {
		b.Decision = bootcheck.SafeMode
	}
	return b
}
