package verifier

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
)

// TCPParams are the tcp probe's parameters.
type TCPParams struct {
	Address string `param:"address,required,hostport"`
	Banner  string `param:"banner"` // the greeting's start, when one is expected
}

func (*TCPParams) probeParams() {}

// probeTCP connects and, when asked, expects a greeting that starts with
// banner (for example "220 " for SMTP, "* OK" for IMAP).
func probeTCP(ctx context.Context, p *TCPParams, rec *Recorder) error {
	addr := p.Address
	var (
		c   net.Conn
		err error
	)
	if err := rec.Phase("connect", func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	banner := p.Banner
	if banner == "" {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return rec.Phase("greeting", func() error {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("no greeting: %w", err)
		}
		if !strings.HasPrefix(line, banner) {
			return fmt.Errorf("greeting %.80q does not start with %q", line, banner)
		}
		return nil
	})
}
