package verifier

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// SystemdParams are the systemd probe's parameters.
type SystemdParams struct {
	Unit string `param:"unit,required"` // such as "nginx.service"
}

func (*SystemdParams) probeParams() {}

// probeSystemd asks systemd (over D-Bus) whether a unit is active: the
// unit's ActiveState and SubState, the two properties it judges (not all of
// them, nor a second connection for signals it never reads, as go-systemd's
// connection would: those were most of the probe's cost). The systemd
// probes of one round (RunAll) share one connection to the system bus, made
// for the round and closed after it; a probe run alone makes its own.
func probeSystemd(ctx context.Context, p *SystemdParams, rec *Recorder) error {
	unit := p.Unit
	var conn *dbus.Conn
	if err := rec.Phase("connect to systemd", func() error {
		c, release, err := roundBus(ctx)
		if err != nil {
			return err
		}
		conn = c
		rec.Cleanup(func(context.Context) { release() })
		return nil
	}); err != nil {
		return err
	}
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

// sharedBus is the system bus connection the systemd probes of one round
// share: dialled by the first probe that asks, under the round's context,
// and closed with it when the round ends.
type sharedBus struct {
	ctx   context.Context // the round's; its end closes conn
	dial  func(context.Context) (*dbus.Conn, error)
	once  sync.Once
	ready chan struct{} // closed once conn or err is set
	conn  *dbus.Conn
	err   error
}

type sharedBusKey struct{}

// withSharedBus gives ctx a connection the round's systemd probes share;
// end closes it (call it once every probe of the round has returned).
func withSharedBus(ctx context.Context) (context.Context, func()) {
	return withSharedDial(ctx, systemBus)
}

// withSharedDial is withSharedBus with the connection made by dial.
func withSharedDial(ctx context.Context, dial func(context.Context) (*dbus.Conn, error)) (context.Context, func()) {
	rctx, cancel := context.WithCancel(ctx)
	b := &sharedBus{ctx: rctx, dial: dial, ready: make(chan struct{})}
	return context.WithValue(ctx, sharedBusKey{}, b), cancel
}

// roundBus is a connection to the system bus for one probe, and the
// function that gives it back: the round's shared one when ctx has it
// (waited for no longer than ctx allows), else one of the probe's own.
func roundBus(ctx context.Context) (*dbus.Conn, func(), error) {
	b, _ := ctx.Value(sharedBusKey{}).(*sharedBus)
	if b == nil {
		c, err := systemBus(ctx)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	b.once.Do(func() {
		go func() {
			b.conn, b.err = b.dial(b.ctx)
			close(b.ready)
		}()
	})
	select {
	case <-b.ready:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if b.err != nil {
		return nil, nil, b.err
	}
	return b.conn, func() {}, nil
}
