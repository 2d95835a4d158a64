package synchronizer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// DefaultSettle bounds how long a unit may stay in a transitional state
// (reloading, activating, deactivating) after its reload job finished
// before it is judged as it is.
const DefaultSettle = 20 * time.Second

// SystemdReloader reloads units through systemd's D-Bus API.
type SystemdReloader struct {
	// Settle bounds the wait for a unit to leave a transitional state
	// after its reload job; 0 is DefaultSettle.
	Settle time.Duration
	// Checks maps a unit to the command that checks its service's
	// configuration before the reload; nil is DefaultChecks().
	Checks map[string][]string
}

// DefaultChecks are the services' own configuration checks, run before a
// reload: some reloads report success with a configuration the service
// then refuses (dovecot's first `doveadm reload` does, and its config
// service then fails). They are compiled in, never taken from a module
// or from the primary: nothing the primary sends chooses what runs here.
// A check whose program is not installed is skipped.
func DefaultChecks() map[string][]string {
	return map[string][]string{
		"nginx.service":   {"/usr/sbin/nginx", "-t", "-q"},
		"dovecot.service": {"/usr/bin/doveconf", "-n"},
		"postfix.service": {"/usr/sbin/postfix", "check"},
		"ssh.service":     {"/usr/sbin/sshd", "-t"},
		"smbd.service":    {"/usr/bin/testparm", "-s"},
		"apache2.service": {"/usr/sbin/apache2ctl", "configtest"},
	}
}

// checkTimeout bounds one configuration check.
const checkTimeout = 15 * time.Second

// checkConfig runs unit's configuration check, if it has one installed.
func checkConfig(ctx context.Context, checks map[string][]string, unit string) error {
	cmd, ok := checks[unit]
	if !ok || len(cmd) == 0 {
		return nil
	}
	if _, err := os.Stat(cmd[0]); err != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c := exec.CommandContext(cctx, cmd[0], cmd[1:]...)
	var out bytes.Buffer
	c.Stderr = &out
	if err := c.Run(); err != nil {
		if cctx.Err() != nil {
			return &TransientError{fmt.Errorf("%s: configuration check %s timed out", unit, strings.Join(cmd, " "))}
		}
		first := strings.TrimSpace(out.String())
		if i := strings.IndexByte(first, '\n'); i >= 0 {
			first = first[:i]
		}
		if len(first) > 300 {
			first = first[:300] + "..."
		}
		return fmt.Errorf("%s refused its new configuration (%s: %v): %s", unit, strings.Join(cmd, " "), err, first)
	}
	return nil
}

// TransientError marks a failure that may clear by itself (a unit still
// settling past the bound, the bus unreachable, a deadline): the same
// commit is worth another try later. A reload refused by the service (its
// reload job failed, or it stopped) is not transient.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient tells whether err (or what it wraps) is a TransientError.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// unitState reads what Reload needs of a unit.
type unitState interface {
	ActiveState(ctx context.Context, unit string) (string, error)
}

type dbusState struct{ conn *sddbus.Conn }

func (d dbusState) ActiveState(ctx context.Context, unit string) (string, error) {
	p, err := d.conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if err != nil {
		return "", err
	}
	s, _ := p.Value.Value().(string)
	return s, nil
}

// Reload reloads each unit that runs (reload-or-try-restart: a stopped unit
// stays stopped) and checks that each one that ran before still runs, once
// it has settled: a unit that reloads asynchronously (Type=notify-reload,
// or a reload that signals the daemon) may still be "reloading" when the
// job is done, and is judged when it leaves that state (bounded wait).
func (r SystemdReloader) Reload(ctx context.Context, units []string) error {
	if len(units) == 0 {
		return nil
	}
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return &TransientError{fmt.Errorf("systemd: %w", err)}
	}
	defer conn.Close()
	st := dbusState{conn}
	checks := r.Checks
	if checks == nil {
		checks = DefaultChecks()
	}
	for _, u := range units {
		before, err := st.ActiveState(ctx, u)
		if err != nil {
			return &TransientError{fmt.Errorf("%s: %w", u, err)}
		}
		if before == "active" || before == "reloading" {
			if err := checkConfig(ctx, checks, u); err != nil {
				return err
			}
		}
		ch := make(chan string, 1)
		if _, err := conn.ReloadOrTryRestartUnitContext(ctx, u, "replace", ch); err != nil {
			return &TransientError{fmt.Errorf("reload %s: %w", u, err)}
		}
		select {
		case res := <-ch:
			switch res {
			case "done":
			case "failed":
				return fmt.Errorf("reload of %s: job failed (the service refused its new configuration: journalctl -u %s)", u, u)
			default: // canceled, timeout, dependency, skipped
				return &TransientError{fmt.Errorf("reload of %s: job %s", u, res)}
			}
		case <-ctx.Done():
			return &TransientError{fmt.Errorf("reload of %s: %w", u, ctx.Err())}
		}
		if err := judgeSettled(ctx, st, u, before == "active", r.Settle); err != nil {
			return err
		}
	}
	return nil
}

// transitional states: the unit is on its way somewhere.
func transitional(s string) bool {
	return s == "reloading" || s == "activating" || s == "deactivating" || s == "refreshing"
}

// judgeSettled waits (at most settle, polling) until the unit leaves a
// transitional state, then requires it active if it was before.
func judgeSettled(ctx context.Context, st unitState, u string, wasActive bool, settle time.Duration) error {
	if settle <= 0 {
		settle = DefaultSettle
	}
	deadline := time.Now().Add(settle)
	wait := 20 * time.Millisecond
	for {
		after, err := st.ActiveState(ctx, u)
		if err != nil {
			return &TransientError{fmt.Errorf("%s: %w", u, err)}
		}
		if !transitional(after) {
			if wasActive && after != "active" {
				return fmt.Errorf("%s is %s after the reload (journalctl -u %s)", u, after, u)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return &TransientError{fmt.Errorf("%s still %s %s after the reload", u, after, settle)}
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return &TransientError{fmt.Errorf("%s still %s after the reload: %w", u, after, ctx.Err())}
		}
		if wait < 250*time.Millisecond {
			wait *= 2
		}
	}
}

// WaitSettled waits, at most bound, until none of units is in a
// transitional state (reloading, activating, ...). The verifier calls it
// before it probes again a service the sync just reloaded.
func WaitSettled(ctx context.Context, units []string, bound time.Duration) error {
	if len(units) == 0 {
		return nil
	}
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	defer conn.Close()
	st := dbusState{conn}
	deadline := time.Now().Add(bound)
	for _, u := range units {
		for {
			s, err := st.ActiveState(ctx, u)
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			if !transitional(s) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s still %s after %s", u, s, bound)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
