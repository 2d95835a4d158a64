package verifier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// MailParams are the mail probe's parameters.
type MailParams struct {
	SMTP string `param:"smtp,hostport"` // default 127.0.0.1:25
	IMAP string `param:"imap,hostport"` // default 127.0.0.1:143
	To   string `param:"to,required"`   // the canary address
	From string `param:"from"`          // default the same as to
	// User and Password log in to IMAP, and to SMTP too with SMTPAuth.
	User     string `param:"user,required"`
	Password string `param:"password"`
	SMTPAuth bool   `param:"smtp_auth"`
	// TLSFingerprint pins the servers' certificate (SHA-256); without it
	// the system roots verify it, or nothing does with Insecure.
	TLSFingerprint string `param:"tls_fingerprint,sha256"`
	Insecure       bool   `param:"insecure"`
	// SMTPTLS is starttls (the default) or none; IMAP always uses
	// STARTTLS, as dovecot refuses plaintext logins.
	SMTPTLS string `param:"smtp_tls,oneof=starttls|none"`
	// VisibleWithin bounds the wait for the canary in the mailbox
	// (default 30s); the wait ends before the probe's deadline in any
	// case, so a canary that never arrives fails as "IMAP login ok,
	// canary not visible after 8.9s".
	VisibleWithin time.Duration `param:"visible_within,positive"`
}

func (*MailParams) probeParams() {}

const defaultVisibleWithin = 30 * time.Second

// tlsFor returns the TLS configuration of a mail probe: the server's
// certificate is trusted if its SHA-256 fingerprint is the pinned one
// (Debian's self-signed dovecot and postfix certificates), or if it
// verifies against the system roots for host.
func tlsFor(p *MailParams, host string) *tls.Config {
	pin := strings.ToLower(strings.ReplaceAll(p.TLSFingerprint, ":", ""))
	if pin == "" {
		return &tls.Config{ServerName: host, InsecureSkipVerify: p.Insecure}
	}
	return &tls.Config{ServerName: host, InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no server certificate")
			}
			sum := sha256.Sum256(raw[0])
			if got := hex.EncodeToString(sum[:]); got != pin {
				return fmt.Errorf("server certificate fingerprint %s is not the pinned %s", got, pin)
			}
			return nil
		}}
}

// dialCtx dials and ties the connection to ctx: its deadline becomes the
// connection's, and a cancel closes it (go-smtp and go-imap set deadlines of
// their own, so closing is what cuts a stalled server off).
func dialCtx(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	go func() { <-ctx.Done(); c.Close() }()
	return c, nil
}

// probeMail submits a message with a unique token over SMTP to the canary
// mailbox, then fetches it over IMAP by its Message-ID, checks the token,
// and deletes and expunges it. It records the submit-to-visible latency and
// sweeps canaries an earlier run left.
func probeMail(ctx context.Context, p *MailParams, rec *Recorder) error {
	to, user, pass := p.To, p.User, p.Password
	from := p.From
	if from == "" {
		from = to
	}
	smtpAddr, imapAddr, within := p.SMTP, p.IMAP, p.VisibleWithin
	tok := token()
	msgID := "<" + tok + "@sentry.canary>"
	left := func() time.Duration {
		if dl, ok := ctx.Deadline(); ok {
			return time.Until(dl)
		}
		return time.Minute
	}

	var submitted time.Time
	if err := rec.Phase("smtp submit", func() error {
		conn, err := dialCtx(ctx, smtpAddr)
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(smtpAddr)
		var c *smtp.Client
		if p.SMTPTLS == "none" {
			c = smtp.NewClient(conn)
		} else if c, err = smtp.NewClientStartTLS(conn, tlsFor(p, host)); err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS: %w", err)
		}
		defer c.Close()
		c.CommandTimeout, c.SubmissionTimeout = left(), left()
		if p.SMTPAuth {
			if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
				return fmt.Errorf("AUTH: %w", err)
			}
		}
		if err := c.Mail(from, nil); err != nil {
			return err
		}
		if err := c.Rcpt(to, nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "From: %s\r\nTo: %s\r\nSubject: sentry canary %s\r\nMessage-ID: %s\r\nDate: %s\r\n\r\n%s\r\n",
			from, to, tok, msgID, time.Now().Format(time.RFC1123Z), tok)
		if err := w.Close(); err != nil {
			return err
		}
		submitted = time.Now()
		return c.Quit()
	}); err != nil {
		return err
	}

	var c *imapclient.Client
	if err := rec.Phase("imap login", func() error {
		conn, err := dialCtx(ctx, imapAddr)
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(imapAddr)
		c, err = imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: tlsFor(p, host)})
		if err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS: %w", err)
		}
		if err := c.Login(user, pass).Wait(); err != nil {
			return err
		}
		_, err = c.Select("INBOX", nil).Wait()
		return err
	}); err != nil {
		if c != nil {
			c.Close()
		}
		return err
	}
	rec.Cleanup(func(context.Context) { c.Logout().Wait(); c.Close() })

	// UIDs, not sequence numbers: another probe run (the agent's schedule
	// and an operator's `sentry verify`) may expunge in the same mailbox.
	var uids []imap.UID
	if err := rec.Phase("canary visible", func() error {
		// The wait ends before the probe's deadline, so that a mail that
		// never arrives is reported as such, not as a probe that hung.
		wait := within
		if dl, ok := ctx.Deadline(); ok {
			if rest := time.Until(dl); wait > rest-visibleMargin(rest) {
				wait = rest - visibleMargin(rest)
			}
		}
		deadline := time.Now().Add(wait)
		for {
			data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: msgID}}}, nil).Wait()
			if err != nil {
				return err
			}
			if uids = data.AllUIDs(); len(uids) > 0 {
				rec.Set("latency_ms", fmt.Sprint(time.Since(submitted).Milliseconds()))
				return nil
			}
			pause := time.Until(deadline)
			if pause <= 0 || ctx.Err() != nil {
				return fmt.Errorf("IMAP login ok, canary not visible after %s", time.Since(submitted).Round(100*time.Millisecond))
			}
			time.Sleep(min(pause, 50*time.Millisecond))
			// A NOOP lets the server report new mail in the mbox.
			if err := c.Noop().Wait(); err != nil {
				return err
			}
		}
	}); err != nil {
		return err
	}
	if err := rec.Phase("check token", func() error {
		msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText}}}).Collect()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			for _, b := range m.BodySection {
				if bytes.Contains(b.Bytes, []byte(tok)) {
					return nil
				}
			}
		}
		return fmt.Errorf("the message %s came without its token", msgID)
	}); err != nil {
		return err
	}
	return rec.Phase("delete", func() error {
		// This run's message, and canaries earlier runs left behind (older
		// than SweepAge: a younger one may be another run's, in flight).
		del := append([]imap.UID{}, uids...)
		old, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "sentry canary "}}}, nil).Wait()
		if err != nil {
			return err
		}
		if others := old.AllUIDs(); len(others) > 0 {
			msgs, err := c.Fetch(imap.UIDSetNum(others...), &imap.FetchOptions{UID: true, InternalDate: true}).Collect()
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if time.Since(m.InternalDate) > SweepAge {
					del = append(del, m.UID)
				}
			}
		}
		if err := c.Store(imap.UIDSetNum(del...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			return err
		}
		// UID EXPUNGE when the server has UIDPLUS: only what this run marked.
		if c.Caps().Has(imap.CapUIDPlus) {
			return c.UIDExpunge(imap.UIDSetNum(del...)).Close()
		}
		return c.Expunge().Close()
	})
}

// visibleMargin is how long before the probe's deadline, with rest left,
// the wait for the canary ends: a tenth of it, between 200 ms and 1 s (and
// at most half of it), time for the last search and the answer.
func visibleMargin(rest time.Duration) time.Duration {
	m := min(max(rest/10, 200*time.Millisecond), time.Second)
	return min(m, rest/2)
}

// SweepAge: canaries older than this are taken for leftovers of an
// interrupted run (a probe's deadline is at most a minute) and deleted by
// the next probe of their kind: messages, rows and files. With a round at
// least every minute, no canary lives past five minutes.
const SweepAge = 4 * time.Minute
