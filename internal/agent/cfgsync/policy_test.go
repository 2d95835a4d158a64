package cfgsync

import (
	"testing"

	"github.com/sentryha/sentry/synchronizer"
)

// policyKey must not depend on map order (a key that changed by itself
// would restart the sync after every commit), and must change with each
// part of the policy.
func TestPolicyKey(t *testing.T) {
	base := func() (*synchronizer.Policy, []synchronizer.RootUnit) {
		return &synchronizer.Policy{Roots: []string{"/etc/nginx", "/etc/postfix"}, Exclude: []string{"*.swp"},
				AllowExec: map[string]bool{"/etc/a/x": true, "/etc/a/y": true, "/etc/a/z": true, "/etc/a/w": true},
				NodeKeys:  []string{"/etc/nginx/node.conf"}},
			[]synchronizer.RootUnit{{Root: "/etc/nginx", Unit: "nginx.service"}}
	}
	p, u := base()
	k := policyKey(p, u)
	for i := 0; i < 50; i++ {
		p, u := base()
		if got := policyKey(p, u); got != k {
			t.Fatalf("policyKey changed with map order:\n%s\n%s", k, got)
		}
	}
	for name, change := range map[string]func(*synchronizer.Policy, *[]synchronizer.RootUnit){
		"roots":      func(p *synchronizer.Policy, _ *[]synchronizer.RootUnit) { p.Roots = append(p.Roots, "/etc/extra") },
		"exclude":    func(p *synchronizer.Policy, _ *[]synchronizer.RootUnit) { p.Exclude = nil },
		"executable": func(p *synchronizer.Policy, _ *[]synchronizer.RootUnit) { p.AllowExec["/etc/a/v"] = true },
		"node keys":  func(p *synchronizer.Policy, _ *[]synchronizer.RootUnit) { p.NodeKeys = nil },
		"units": func(_ *synchronizer.Policy, u *[]synchronizer.RootUnit) {
			*u = append(*u, synchronizer.RootUnit{Root: "/etc/postfix", Unit: "postfix.service"})
		},
	} {
		p, u := base()
		change(p, &u)
		if policyKey(p, u) == k {
			t.Errorf("a change of %s leaves the key as it was", name)
		}
	}
}
