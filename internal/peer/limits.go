package peer

import (
	"errors"
	"fmt"
	"regexp"
	"unicode"

	"github.com/sentryha/sentry/internal/stamp"
	"github.com/sentryha/sentry/internal/store"
)

// What a node may say about itself, bounded (issue 20, finding 10): the
// receiver stores the peer's results, so their names and number are
// capped before anything is kept.

// MaxProbes bounds the probes of one node: the results in one message,
// and the distinct probe names a receiver keeps of its peer.
const MaxProbes = 64

// MaxBoundaryPending bounds the pending boundary entries of one status.
const MaxBoundaryPending = 256

// probeNameRe is the form of a probe name: the modules' own rule
// (modules/manifest.go), letters, digits, spaces and ._/:@- up to 64
// bytes, with no ".." (no path is made of one, but a name never looks
// like one either).
var probeNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._/:@-]{0,63}$`)

// ValidProbeName says whether name is a probe name.
func ValidProbeName(name string) bool {
	return probeNameRe.MatchString(name) && !containsDotDot(name)
}

func containsDotDot(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] == '.' {
			return true
		}
	}
	return false
}

// Bounds of one result's texts. The sender keeps its measured values
// smaller still (and the receiver cuts them to that again before it
// stores them); these bound what a message can make the receiver hold.
const (
	maxResultText  = 4096 // message, a phase's error
	maxResultName  = 128  // kind, failed phase, a phase's name
	maxPhases      = 64
	maxValues      = 64
	maxValueKey    = 128
	maxValueLength = 4096
)

// validResults checks results said to be node's.
func validResults(rs []store.StoredResult, node string) error {
	for _, r := range rs {
		if err := validResult(r, node); err != nil {
			return err
		}
	}
	return nil
}

// validResult checks one result said to be node's: its node is node, its
// probe name has the form of one, its texts are bounded.
func validResult(r store.StoredResult, node string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: result %.40q of node %.40q from %s: %s", ErrMalformed, r.Probe, r.Node, node, why)
	}
	switch {
	case r.Node != node:
		return bad("a node sends only its own results")
	case !ValidProbeName(r.Probe):
		return bad("not a probe name (1 to 64 letters, digits, spaces and ._/:@-)")
	case len(r.Kind) > maxResultName || len(r.FailedPhase) > maxResultName || len(r.Message) > maxResultText:
		return bad("kind, failed phase or message too long")
	case len(r.Phases) > maxPhases:
		return bad(fmt.Sprintf("%d phases (at most %d)", len(r.Phases), maxPhases))
	case len(r.Values) > maxValues:
		return bad(fmt.Sprintf("%d values (at most %d)", len(r.Values), maxValues))
	}
	for _, p := range r.Phases {
		if len(p.Name) > maxResultName || len(p.Error) > maxResultText {
			return bad("a phase's name or error too long")
		}
	}
	for k, v := range r.Values {
		if len(k) > maxValueKey || len(v) > maxValueLength {
			return bad("a value too long")
		}
	}
	return nil
}

func hasControl(s string) bool {
	for _, c := range s {
		if unicode.IsControl(c) {
			return true
		}
	}
	return false
}

// Generations (issue 20, finding 3). A generation counts a disk set's role
// changes: each promotion raises it by one above the newest known. The
// peer's is believed only close to what the receiver knows.

// GenerationWindow is how far above the newest generation the receiver
// knows (its own, the peer's last seen) the peer's may be. A promotion
// raises the newest by one; sixteen allows for a node that was away while
// the cluster changed roles a few times, and refuses a number no history
// makes.
const GenerationWindow = 16

// ErrGeneration wraps every refusal of CheckGeneration.
var ErrGeneration = errors.New("generation refused")

// CheckGeneration checks gen, a generation the peer claims, against known,
// the newest the receiver knows (0: none, as before a join): never above
// stamp.MaxGeneration, and not more than GenerationWindow above known.
func CheckGeneration(gen, known uint64) error {
	switch {
	case gen > stamp.MaxGeneration:
		return fmt.Errorf("%w: generation %d is above the limit of any generation (%d)", ErrGeneration, gen, stamp.MaxGeneration)
	case known > 0 && gen > known+GenerationWindow:
		return fmt.Errorf("%w: generation %d is more than %d above the newest this node knows (%d)", ErrGeneration, gen, GenerationWindow, known)
	}
	return nil
}
