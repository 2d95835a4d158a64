package verifier

import (
	"context"
	"fmt"
	"os"
	"strconv"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// SystemdParams are the systemd probe's parameters.
type SystemdParams struct {
	Unit string `param:"unit,required"` // such as "nginx.service"
}

func (*SystemdParams) probeParams() {}

// probeSystemd asks systemd (over D-Bus) whether a unit is active: a
// connection of its own to the system bus each run, and the unit's
// ActiveState and SubState, the two properties it judges (not all of
// them, nor a second connection for signals it never reads, as go-systemd's
// connection would: those were most of the probe's cost).
func probeSystemd(ctx context.Context, p *SystemdParams, rec *Recorder) error {
	unit := p.Unit
	var (
		conn *dbus.Conn
		err  error
	)
	if err := rec.Phase("connect to systemd", func() error {
		conn, err = systemBus(ctx)
		return err
	}); err != nil {
		return err
	}
	defer conn.Close()
	return rec.Phase("unit state", func() error {
		path := dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + sddbus.PathBusEscape(unit))
		if !path.IsValid() {
			return fmt.Errorf("invalid unit name %q", unit)
		}
		obj := conn.Object("org.freedesktop.systemd1", path)
		var state [2]string
		for i, name := range []string{"ActiveState", "SubState"} {
			var v dbus.Variant
			if err := obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.systemd1.Unit", name).Store(&v); err != nil {
				return err
			}
			state[i] = fmt.Sprint(v.Value())
		}
		active, sub := state[0], state[1]
		rec.Set("state", active+"/"+sub)
		if active != "active" {
			return fmt.Errorf("%s is %s (%s)", unit, active, sub)
		}
		return nil
	})
}

// systemBus is a private connection to the system bus, authenticated
// (EXTERNAL, as this user) and registered (Hello).
func systemBus(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.SystemBusPrivate(dbus.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
