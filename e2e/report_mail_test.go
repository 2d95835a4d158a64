package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/sentryha/sentry/lab"
)

// reportByMail runs the weekly report's service by hand on P of a paired
// lab (both nodes on this release): it goes through P's postfix to a lab
// mailbox, is fetched over IMAP from the office, and must be a
// multipart/alternative of text and of HTML with every cid: image present
// as a PNG, the verdict in its subject; the report is then kept
// (`sentry report list`), and S, whose primary answers, skips.
func reportByMail(t *testing.T) {
	const user, pass = "sentryreport", "report-e2e-Secret-1"
	sentry(t, "lab", "exec", "P", "--", "sh", "-c", "id "+user+" >/dev/null 2>&1 || useradd -m "+user+"; echo '"+user+":"+pass+"' | chpasswd")
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "sh", "-c", `cat >> /etc/sentry/sentry.toml <<'EOF'

[alert.mail]
relay = "127.0.0.1:25"
starttls = "opportunistic"
from = "Sentry <sentry@node-p>"
to = ["`+user+`@localhost"]
EOF
systemctl reload sentry-agent`)
	}
	waitUntil(t, "both agents reloaded", 30*time.Second, func() bool {
		for _, set := range []string{"P", "S"} {
			if j, _ := sentryErr("lab", "exec", set, "--", "journalctl", "-u", "sentry-agent", "-n", "50", "--no-pager"); !strings.Contains(j, "configuration reloaded") {
				return false
			}
		}
		return true
	})
	// The current week: the lab's history is minutes old.
	for _, set := range []string{"P", "S"} {
		sentry(t, "lab", "exec", set, "--", "mkdir", "-p", "/etc/systemd/system/sentry-report.service.d")
		sentry(t, "lab", "exec", set, "--", "sh", "-c", `printf '[Service]\nExecStart=\nExecStart=/usr/bin/sentry report --mail --week current\n' > /etc/systemd/system/sentry-report.service.d/e2e.conf && systemctl daemon-reload`)
	}
	start := time.Now()
	sentry(t, "lab", "exec", "P", "--", "systemctl", "start", "sentry-report.service")
	ran := time.Since(start)
	out := sentry(t, "lab", "exec", "P", "--", "journalctl", "-u", "sentry-report.service", "--no-pager", "-o", "cat")
	if !strings.Contains(out, "mailed to "+user+"@localhost") {
		t.Fatalf("sentry-report.service on P:\n%s", out)
	}
	// S hears from P: it skips, and says why.
	sentry(t, "lab", "exec", "S", "--", "systemctl", "start", "sentry-report.service")
	if out := sentry(t, "lab", "exec", "S", "--", "journalctl", "-u", "sentry-report.service", "--no-pager", "-o", "cat"); !strings.Contains(out, "not mailed: this is the secondary and the primary node-p answered") {
		t.Errorf("sentry-report.service on S:\n%s", out)
	}
	if out := sentry(t, "lab", "exec", "P", "--", "sentry", "report", "list"); !strings.Contains(out, "(partial week)") {
		t.Errorf("sentry report list on P:\n%s", out)
	}

	// Fetched over IMAP from the office, as the owner's mail client would.
	host := strings.Split(lab.Sets[0].Address, "/")[0]
	var raw []byte
	waitUntil(t, "the report in "+user+"'s mailbox on P", 60*time.Second, func() bool {
		raw = fetchReport(t, host, user, pass)
		return raw != nil
	})
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	verdicts := []string{"READY (", "NOT READY (", "UNKNOWN (", "not enough data ("}
	has := false
	for _, v := range verdicts {
		has = has || strings.HasPrefix(subject, "Sentry office: "+v)
	}
	if !has {
		t.Errorf("subject %q: no verdict", subject)
	}
	if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "multipart/alternative") {
		t.Errorf("Content-Type %q, want multipart/alternative", ct)
	}
	parts := mailParts(t, m.Header.Get("Content-Type"), m.Body)
	var text, html string
	images := map[string][]byte{}
	for _, p := range parts {
		switch {
		case strings.HasPrefix(p.ctype, "text/plain"):
			text = string(p.body)
		case strings.HasPrefix(p.ctype, "text/html"):
			html = string(p.body)
		case strings.HasPrefix(p.ctype, "image/png"):
			images[strings.Trim(p.cid, "<>")] = p.body
		}
	}
	if !strings.Contains(text, "weekly report") || !strings.Contains(html, "<html") {
		t.Errorf("no text or no HTML part: text %.200q, html %.200q", text, html)
	}
	// The restore tests of the week (restoreTestInLab, and the one this
	// weekly run made before the report).
	for _, want := range []string{"node-p: /srv/restic: FAILED", "node-p: /srv/restic: good; checked data subset"} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("the report's text does not say %q:\n%s", want, text)
		}
	}
	cids := 0
	for _, ref := range strings.Split(html, `src="cid:`)[1:] {
		cid := ref[:strings.IndexByte(ref, '"')]
		cids++
		img, ok := images[cid]
		if !ok {
			t.Errorf("the HTML shows cid:%s, which the mail does not carry (it has %d images)", cid, len(images))
			continue
		}
		if _, err := png.Decode(bytes.NewReader(img)); err != nil {
			t.Errorf("image %s: %v", cid, err)
		}
	}
	if cids == 0 {
		t.Error("the HTML shows no chart")
	}
	figure(t, "weekly report by mail: sentry-report.service ran %s on P; %d bytes, subject %q, %d inline PNG charts, all present",
		ran.Round(10*time.Millisecond), len(raw), subject, cids)
}

type mailPart struct {
	ctype, cid string
	body       []byte
}

// mailParts flattens a MIME body into its leaves, decoded.
func mailParts(t *testing.T, ctype string, body io.Reader) []mailPart {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatalf("content type %q: %v", ctype, err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		b, _ := io.ReadAll(body)
		return []mailPart{{ctype: mt, body: b}}
	}
	var out []mailPart
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		pt := p.Header.Get("Content-Type")
		if sub, _, _ := mime.ParseMediaType(pt); strings.HasPrefix(sub, "multipart/") {
			out = append(out, mailParts(t, pt, p)...)
			continue
		}
		var r io.Reader = p
		switch strings.ToLower(p.Header.Get("Content-Transfer-Encoding")) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, p)
		case "quoted-printable":
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("part %s: %v", pt, err)
		}
		out = append(out, mailPart{ctype: pt, cid: p.Header.Get("Content-ID"), body: b})
	}
}

// fetchReport logs in to host's IMAP from the office and returns the
// newest mail whose subject starts "Sentry office:" (nil: none yet).
func fetchReport(t *testing.T, host, user, pass string) []byte {
	conn, err := officeDial(net.JoinHostPort(host, "143"))
	if err != nil {
		t.Logf("IMAP: %v", err)
		return nil
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := imapclient.NewStartTLS(conn, &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		conn.Close()
		t.Logf("IMAP STARTTLS: %v", err)
		return nil
	}
	defer c.Close()
	if err := c.Login(user, pass).Wait(); err != nil {
		t.Fatalf("IMAP login as %s: %v", user, err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("IMAP select: %v", err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "Sentry office:"}}}, nil).Wait()
	if err != nil {
		t.Fatalf("IMAP search: %v", err)
	}
	uids := data.AllUIDs()
	if len(uids) == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uids[len(uids)-1]), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || len(msgs) == 0 || len(msgs[0].BodySection) == 0 {
		t.Fatalf("IMAP fetch: %v (%d messages)", err, len(msgs))
	}
	c.Logout().Wait()
	return msgs[0].BodySection[0].Bytes
}
