package verifier

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
)

// probeTCP connects and, when asked, expects a greeting that starts with
// banner (for example "220 " for SMTP, "* OK" for IMAP).
//
// Params: address (host:port, required), banner (optional).
func probeTCP(ctx context.Context, p Params, rec *Recorder) error {
	addr, err := p.Require("address")
	if err != nil {
		return err
	}
	var c net.Conn
	if err := rec.Phase("connect", func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	banner := p.Get("banner", "")
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
