package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// MailHeader is who the report's mail is from and to.
type MailHeader struct {
	From string   // an address, "Sentry <sentry@office.example>"
	To   []string // addresses
	Date time.Time
	// Note goes into the subject after the cluster's name, e.g. "sent by
	// beta: alpha unreachable for a day" when the secondary mails it.
	Note string
}

// Subject is the mail's subject: "Sentry office: READY (99.8 % of week
// 49)", with the note after the cluster's name when there is one.
func (r *Report) Subject(note string) string {
	s := "Sentry " + r.Cluster
	if note != "" {
		s += " (" + note + ")"
	}
	return s + ": " + r.Headline()
}

// Mail builds the report's mail (RFC 5322, CRLF line ends): a
// multipart/alternative of the text and of a multipart/related that holds
// the HTML and its charts as inline PNG images referred to by Content-ID.
func (r *Report) Mail(h MailHeader) ([]byte, error) {
	from, err := mail.ParseAddress(h.From)
	if err != nil {
		return nil, fmt.Errorf("report %s: mail: from %q: %w", r.Week, h.From, err)
	}
	if len(h.To) == 0 {
		return nil, fmt.Errorf("report %s: mail: no recipient", r.Week)
	}
	var to []string
	for _, a := range h.To {
		ad, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("report %s: mail: to %q: %w", r.Week, a, err)
		}
		to = append(to, ad.String())
	}
	if strings.ContainsAny(h.Note, "\r\n") {
		return nil, fmt.Errorf("report %s: mail: the note holds a line break", r.Week)
	}
	charts, err := r.Charts()
	if err != nil {
		return nil, err
	}
	text := r.Text()
	page := r.HTML(charts, CIDSource)
	sum := sha256.Sum256([]byte(text + page))
	id := hex.EncodeToString(sum[:12])
	date := h.Date
	if date.IsZero() {
		date = r.Made
	}

	var msg bytes.Buffer
	hdr := func(k, v string) { msg.WriteString(k + ": " + v + "\r\n") }
	hdr("MIME-Version", "1.0")
	hdr("Date", date.Format(time.RFC1123Z))
	hdr("From", from.String())
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", r.Subject(h.Note)))
	hdr("Message-ID", "<sentry-report-"+r.Week+"-"+id+"@"+domainOf(from.Address)+">")
	hdr("X-Sentry-Week", r.Week)

	alt := multipart.NewWriter(&msg)
	if err := alt.SetBoundary("=_alt_" + id); err != nil {
		return nil, err
	}
	hdr("Content-Type", "multipart/alternative; boundary=\""+alt.Boundary()+"\"")
	msg.WriteString("\r\n")

	if err := qpPart(alt, "text/plain; charset=utf-8", text); err != nil {
		return nil, fmt.Errorf("report %s: mail: %w", r.Week, err)
	}
	var related bytes.Buffer
	rel := multipart.NewWriter(&related)
	if err := rel.SetBoundary("=_rel_" + id); err != nil {
		return nil, err
	}
	relHdr := textproto.MIMEHeader{}
	relHdr.Set("Content-Type", "multipart/related; boundary=\""+rel.Boundary()+"\"; type=\"text/html\"")
	if err := qpPart(rel, "text/html; charset=utf-8", page); err != nil {
		return nil, fmt.Errorf("report %s: mail: %w", r.Week, err)
	}
	for _, c := range charts {
		ph := textproto.MIMEHeader{}
		ph.Set("Content-Type", "image/png; name=\""+c.Name+".png\"")
		ph.Set("Content-Transfer-Encoding", "base64")
		ph.Set("Content-ID", "<"+ContentID(c)+">")
		ph.Set("Content-Disposition", "inline; filename=\""+c.Name+".png\"")
		w, err := rel.CreatePart(ph)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(base64Lines(c.PNG)); err != nil {
			return nil, err
		}
	}
	if err := rel.Close(); err != nil {
		return nil, err
	}
	w, err := alt.CreatePart(relHdr)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(related.Bytes()); err != nil {
		return nil, err
	}
	if err := alt.Close(); err != nil {
		return nil, err
	}
	return msg.Bytes(), nil
}

// qpPart writes one quoted-printable part.
func qpPart(mw *multipart.Writer, ctype, body string) error {
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Type", ctype)
	ph.Set("Content-Transfer-Encoding", "quoted-printable")
	w, err := mw.CreatePart(ph)
	if err != nil {
		return err
	}
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(body)); err != nil {
		return err
	}
	return qp.Close()
}

// base64Lines is b in base64, in lines of 76 characters ending in CRLF.
func base64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc + "\r\n")
	return out.Bytes()
}

func domainOf(addr string) string {
	if _, d, ok := strings.Cut(addr, "@"); ok && d != "" {
		return d
	}
	return "sentry.invalid"
}
