package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
	"github.com/sentryha/sentry/internal/pki"
	"github.com/sentryha/sentry/internal/safetoml"
	"github.com/sentryha/sentry/synchronizer"
	"github.com/sentryha/sentry/verifier"
)

// CanaryPasswordOf is the canary password, derived from the cluster key
// (the same on both nodes, never stored, never sent). It is the one
// derivation: the agent's schedule, `sentry verify` and `sentry verifier
// setup` all take it from here.
func CanaryPasswordOf(sec *synchronizer.Secrets) string {
	return sec.MAC([]byte("sentry canary password"))[:32]
}

// CanaryPassword is the canary password derived from key, the cluster
// key's text.
func CanaryPassword(key string) (string, error) {
	sec, err := synchronizer.NewSecrets(strings.TrimSpace(key))
	if err != nil {
		return "", err
	}
	return CanaryPasswordOf(sec), nil
}

// ReadCanaryPassword derives the canary password from the cluster key in
// the state folder stateDir.
func ReadCanaryPassword(stateDir string) (string, error) {
	p := filepath.Join(stateDir, "pki", pki.ClusterKeyFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("the canary password comes from the cluster key, and %s: %w (pair the nodes first)", p, err)
	}
	return CanaryPassword(string(b))
}

// CanaryFile declares the canaries: `sentry verifier setup` on the primary
// writes it, the configuration sync brings it to the secondary, and the
// secondary's agent then makes the same canaries there (accounts and
// databases are not files the sync could carry). Only the declaration
// crosses; no user data does.
const CanaryFile = "/etc/sentry/cluster/canary.toml"

// canaryAppliedName, in the state folder, holds the setup id done here.
const canaryAppliedName = "canary-applied"

// DeclareCanaries records, after a successful setup on this node, that the
// canaries exist (on a primary, for the secondary to follow).
func DeclareCanaries(stateDir string, primary bool) error {
	id := randomID()
	if primary {
		body := fmt.Sprintf("# Written by `sentry verifier setup` on the primary; the secondary's agent\n# makes the same canaries when this changes.\nschema_version = 1\nsetup_id = %q\nsetup_at = %s\n",
			id, time.Now().UTC().Format(time.RFC3339))
		if err := os.MkdirAll(filepath.Dir(CanaryFile), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(CanaryFile, []byte(body), 0o644); err != nil {
			return err
		}
	}
	if !primary {
		// A secondary set up by hand has done what the primary declared.
		var decl struct {
			SetupID string `toml:"setup_id"`
		}
		if _, err := safetoml.DecodeFile(CanaryFile, &decl, safetoml.Small()); err == nil && decl.SetupID != "" {
			id = decl.SetupID
		}
	}
	return atomicfile.Write(filepath.Join(stateDir, canaryAppliedName), []byte(id), 0o600)
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// followCanaries makes this node's canaries when the declaration changed.
func (s *Schedule) followCanaries(ctx context.Context, pw string) {
	var decl struct {
		SchemaVersion int       `toml:"schema_version"`
		SetupID       string    `toml:"setup_id"`
		SetupAt       time.Time `toml:"setup_at"`
	}
	if _, err := safetoml.DecodeFile(filepath.Join(s.d.ClusterDir, "canary.toml"), &decl, safetoml.Small()); err != nil || decl.SetupID == "" {
		return
	}
	mark := s.markFile()
	if b, err := os.ReadFile(mark); err == nil && string(b) == decl.SetupID {
		return
	}
	var pages []verifier.Page
	if s.d.CanaryPages != nil {
		pages = s.d.CanaryPages()
	}
	steps := verifier.Setup(ctx, pw, pages...)
	var bad []string
	for _, st := range steps {
		if st.Error != "" {
			bad = append(bad, st.Service+": "+st.Error)
		}
	}
	node := s.node()
	if len(bad) > 0 {
		s.d.Log.Error("canary setup from the primary's declaration failed", "errors", strings.Join(bad, "; "))
		s.d.Event("canary-setup-failed", node, "canary setup failed: "+strings.Join(bad, "; "), map[string]string{"setup_id": decl.SetupID})
		return
	}
	if err := atomicfile.Write(mark, []byte(decl.SetupID), 0o600); err != nil {
		s.d.Log.Error("canary mark", "err", err)
	}
	s.d.Log.Info("canaries made as the primary declared", "setup_id", decl.SetupID)
	s.d.Event("canary-setup", node, fmt.Sprintf("canaries made on %s as the primary declared (%d steps)", node, len(steps)), map[string]string{"setup_id": decl.SetupID})
}
