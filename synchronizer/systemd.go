package synchronizer

import (
	"context"
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// SystemdReloader reloads units through systemd's D-Bus API.
type SystemdReloader struct{}

// Reload reloads each unit that runs (reload-or-try-restart: a stopped unit
// stays stopped) and checks that each one that ran before still runs.
func (SystemdReloader) Reload(ctx context.Context, units []string) error {
	if len(units) == 0 {
		return nil
	}
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return fmt.Errorf("systemd: %w", err)
	}
	defer conn.Close()
	for _, u := range units {
		before, err := conn.GetUnitPropertyContext(ctx, u, "ActiveState")
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		wasActive := before.Value.Value() == "active"
		ch := make(chan string, 1)
		if _, err := conn.ReloadOrTryRestartUnitContext(ctx, u, "replace", ch); err != nil {
			return fmt.Errorf("reload %s: %w", u, err)
		}
		select {
		case res := <-ch:
			if res != "done" {
				return fmt.Errorf("reload of %s: job %s", u, res)
			}
		case <-ctx.Done():
			return fmt.Errorf("reload of %s: %w", u, ctx.Err())
		}
		after, err := conn.GetUnitPropertyContext(ctx, u, "ActiveState")
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		if wasActive && after.Value.Value() != "active" {
			return fmt.Errorf("%s is %v after the reload", u, after.Value.Value())
		}
	}
	return nil
}
