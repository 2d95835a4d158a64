package cfgsync

import (
	"regexp"
	"sort"
	"strings"

	"github.com/sentryha/sentry/synchronizer"
)

// primaryPolicy adds the per-node overlays, which only the primary tracks,
// and the cluster key when secrets are sent encrypted.
func (s *Sync) primaryPolicy(secrets *synchronizer.Secrets) *synchronizer.Policy {
	p, _ := s.d.Policy()
	p.Roots = append(append([]string{}, p.Roots...), synchronizer.OverlayDir)
	if s.d.Conf().Sync.EncryptSecrets {
		p.Secrets = secrets
	}
	return p
}

// policyKey is a text form of the sync policy and the reload order, to
// tell when the selected modules changed them.
func policyKey(p *synchronizer.Policy, units []synchronizer.RootUnit) string {
	var exec []string
	for e, ok := range p.AllowExec {
		if ok {
			exec = append(exec, e)
		}
	}
	sort.Strings(exec)
	us := make([]string, len(units))
	for i, u := range units {
		us[i] = u.Root + "=" + u.Unit
	}
	return strings.Join([]string{strings.Join(p.Roots, " "), strings.Join(p.Exclude, " "), strings.Join(exec, " "),
		strings.Join(p.NodeKeys, " "), strings.Join(us, " ")}, "\n")
}

// currentPolicyKey is the key of the policy the selected modules give now,
// for this node's role.
func (s *Sync) currentPolicyKey(primary bool, secrets *synchronizer.Secrets) string {
	p, units := s.d.Policy()
	if primary {
		p = s.primaryPolicy(secrets)
	}
	return policyKey(p, units)
}

// secretLine matches a configuration line that sets a password or a
// secret (key = value, key: value, key value), whatever the service.
var secretLine = regexp.MustCompile(`(?i)^([-+ ]?\s*[\w.-]*(passwd|password|passphrase|secret|credential|token|api_?key)[\w.-]*\s*[=:]?\s*)\S.*$`)

// redactSecrets hides the values of password-looking lines in a diff kept
// in an event (events are stored, listed and may be mailed; the operator
// sees the whole file with sentry config drift, as root).
func redactSecrets(diff string) string {
	lines := strings.Split(diff, "\n")
	for i, l := range lines {
		if m := secretLine.FindStringSubmatch(l); m != nil {
			lines[i] = m[1] + "(redacted)"
		}
	}
	return strings.Join(lines, "\n")
}
