package modules

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/sentryha/sentry/verifier"
)

// A probe parameter may hold placeholders, filled in on each node when the
// probe list is built (Set.Probes), so that no secret and no node's own
// fingerprint is ever written in a manifest:
//
//	${password}              the canary password (derived from the cluster key)
//	${tls_fingerprint:PATH}  SHA-256 of the first PEM certificate in PATH
//	${ssh_fingerprint:PATH}  SHA256:... of the SSH public key in PATH
//
// "|fallback" before the closing brace gives the value to use when a file
// cannot be read: ${ssh_fingerprint:/etc/ssh/ssh_host_ed25519_key.pub|unknown}.
// Without a fallback, a parameter whose file cannot be read is left out.
var placeholderRe = regexp.MustCompile(`\$\{([a-z_]+)(?::([^}|]*))?(?:\|([^}]*))?\}`)

// placeholders are the known names and whether they take a path.
var placeholders = map[string]bool{"password": false, "tls_fingerprint": true, "ssh_fingerprint": true}

// checkPlaceholders says what is wrong with the placeholders of a value.
func checkPlaceholders(v string) error {
	rest := placeholderRe.ReplaceAllString(v, "")
	if strings.Contains(rest, "${") {
		return fmt.Errorf("%q: a placeholder is not closed or malformed: write ${name} or ${name:/path}", v)
	}
	for _, m := range placeholderRe.FindAllStringSubmatch(v, -1) {
		takesPath, ok := placeholders[m[1]]
		switch {
		case !ok:
			return fmt.Errorf("unknown placeholder ${%s}: known are ${password}, ${tls_fingerprint:PATH}, ${ssh_fingerprint:PATH}", m[1])
		case takesPath && checkPath(m[2]) != "":
			return fmt.Errorf("${%s:%s}: %s", m[1], m[2], checkPath(m[2]))
		case !takesPath && m[2] != "":
			return fmt.Errorf("${%s} takes no argument", m[1])
		}
	}
	return nil
}

// ProbeEnv is what a node fills placeholders with.
type ProbeEnv struct {
	Password string        // the canary password
	Timeout  time.Duration // a probe's deadline when its manifest gives none
	Root     string        // files named by placeholders are read under Root ("" is /)
}

// expand fills the placeholders of v; ok is false when a file could not be
// read and the placeholder has no fallback.
func (env ProbeEnv) expand(v string) (out string, ok bool) {
	ok = true
	out = placeholderRe.ReplaceAllStringFunc(v, func(s string) string {
		m := placeholderRe.FindStringSubmatch(s)
		var (
			val string
			err error
		)
		switch m[1] {
		case "password":
			return env.Password
		case "tls_fingerprint":
			val, err = verifier.CertFingerprint(filepath.Join(env.Root, m[2]))
		case "ssh_fingerprint":
			val, err = verifier.HostKeyFingerprint(filepath.Join(env.Root, m[2]))
		}
		if err != nil {
			if strings.Contains(s, "|") {
				return m[3]
			}
			ok = false
		}
		return val
	})
	return out, ok
}

// Spec turns a probe into the verifier's form for this node: its typed
// parameters with the placeholders filled in (a parameter whose
// placeholder cannot be filled takes the kind's default). A Probe made
// in Go without Typed has its Params decoded here; Run reports what is
// wrong with them.
func (env ProbeEnv) Spec(p Probe) verifier.Spec {
	s := verifier.Spec{Name: p.Name, Kind: p.Kind, Timeout: env.Timeout}
	if d, err := time.ParseDuration(p.Timeout); err == nil && p.Timeout != "" {
		s.Timeout = d
	}
	typed := p.Typed
	if typed == nil {
		var err error
		if typed, err = verifier.ParseParams(p.Kind, p.Params); err != nil {
			return s
		}
	}
	s.Params = verifier.ExpandParams(p.Kind, typed, env.expand)
	return s
}
