package verifier

import (
	"context"
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// SystemdParams are the systemd probe's parameters.
type SystemdParams struct {
	Unit string `param:"unit,required"` // such as "nginx.service"
}

func (*SystemdParams) probeParams() {}

// probeSystemd asks systemd (over D-Bus) whether a unit is active.
func probeSystemd(ctx context.Context, p *SystemdParams, rec *Recorder) error {
	unit := p.Unit
	var (
		conn *sddbus.Conn
		err  error
	)
	if err := rec.Phase("connect to systemd", func() error {
		conn, err = sddbus.NewSystemConnectionContext(ctx)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	return rec.Phase("unit state", func() error {
		props, err := conn.GetUnitPropertiesContext(ctx, unit)
		if err != nil {
			return err
		}
		active, sub := fmt.Sprint(props["ActiveState"]), fmt.Sprint(props["SubState"])
		rec.Set("state", active+"/"+sub)
		if active != "active" {
			return fmt.Errorf("%s is %s (%s)", unit, active, sub)
		}
		return nil
	})
}
