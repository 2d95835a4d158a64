package apttrust

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// verify returns the signed text of an InRelease file, as gpgv verified it
// with the key set of its source. As apt, it takes a file with at least
// one good signature by a key the source allows and no bad one: a
// signature by a key the set does not hold (NO_PUBKEY; gpgv exits 2) is
// not an error when another one is good.
func (o Options) verify(path string, ks *keyset, t trust) ([]byte, error) {
	args := []string{"--status-fd", "2"}
	for _, k := range ks.files {
		args = append(args, "--keyring", k)
	}
	args = append(args, "--output", "-", path)
	var out, errb bytes.Buffer
	cmd := exec.Command(o.Gpgv, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	st := parseStatus(errb.String())
	var ee *exec.ExitError
	switch {
	case err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 2 && len(st.bad) == 0 && len(st.good) > 0):
		return nil, fmt.Errorf("%s: signature does not verify with %s (%v): %s", path, t.what(), err, lastLines(errb.String(), 3))
	case st.nodata || len(st.bad) > 0:
		return nil, fmt.Errorf("%s: signature does not verify with %s: %s", path, t.what(), lastLines(errb.String(), 3))
	}
	for _, v := range st.valid {
		if st.isGood(v.fpr) && allowed(v, ks.fprs) {
			return out.Bytes(), nil
		}
	}
	if len(ks.fprs) > 0 && len(st.valid) > 0 {
		return nil, fmt.Errorf("%s: signed by no key its signed-by names (%s; source %s)", path, strings.Join(ks.fprs, ", "), t.from)
	}
	return nil, fmt.Errorf("%s: gpgv reported no good signature by %s", path, t.what())
}

// gpgvStatus is what gpgv's status lines say.
type gpgvStatus struct {
	good   []string // GOODSIG: the key ids (or fingerprints) of good signatures
	bad    []string // BADSIG
	valid  []validSig
	nodata bool
}

// validSig is a VALIDSIG: the signing key's fingerprint and its primary
// key's.
type validSig struct{ fpr, primary string }

func parseStatus(s string) gpgvStatus {
	var st gpgvStatus
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(strings.TrimPrefix(l, "[GNUPG:] "))
		if !strings.HasPrefix(l, "[GNUPG:] ") || len(f) == 0 {
			continue
		}
		switch f[0] {
		case "GOODSIG":
			if len(f) > 1 {
				st.good = append(st.good, strings.ToUpper(f[1]))
			}
		case "BADSIG":
			st.bad = append(st.bad, strings.Join(f[1:], " "))
		case "NODATA":
			st.nodata = true
		case "VALIDSIG":
			if len(f) > 1 {
				v := validSig{fpr: strings.ToUpper(f[1]), primary: strings.ToUpper(f[1])}
				if len(f) > 10 {
					v.primary = strings.ToUpper(f[10])
				}
				st.valid = append(st.valid, v)
			}
		}
	}
	return st
}

// isGood says whether a good signature (GOODSIG, a long key id or a
// fingerprint) is by the key of that fingerprint.
func (st gpgvStatus) isGood(fpr string) bool {
	for _, g := range st.good {
		if len(g) >= 16 && strings.HasSuffix(fpr, g) {
			return true
		}
	}
	return false
}

// allowed says whether a valid signature's key is one signed-by names:
// any when it names no fingerprint; else the key of a fingerprint, or a
// subkey of it unless the fingerprint ends in '!' (as apt).
func allowed(v validSig, fprs []string) bool {
	if len(fprs) == 0 {
		return true
	}
	for _, f := range fprs {
		exact := strings.HasSuffix(f, "!")
		f = strings.TrimSuffix(f, "!")
		if f == v.fpr || (!exact && f == v.primary) {
			return true
		}
	}
	return false
}

// checkDates refuses a Release whose Valid-Until is past, or whose Date is
// more than MaxFuture ahead of the clock, as apt does (unless the source
// says check-valid-until=no or check-date=no). A date apt could not read
// is refused too.
func (o Options) checkDates(path string, signed []byte, t trust) error {
	f := releaseFields(signed)
	now := o.Now()
	if v, ok := f["Valid-Until"]; ok && t.checkValidUntil {
		until, err := parseReleaseDate(v)
		if err != nil {
			return fmt.Errorf("%s: Valid-Until %q: %v: not used", path, v, err)
		}
		if now.After(until) {
			return fmt.Errorf("%s: expired on %s (Valid-Until), %s ago: not used (apt update fetches a new one)", path, v, now.Sub(until).Round(time.Second))
		}
	}
	if v, ok := f["Date"]; ok && t.checkDate {
		date, err := parseReleaseDate(v)
		if err != nil {
			return fmt.Errorf("%s: Date %q: %v: not used", path, v, err)
		}
		if ahead := date.Sub(now); ahead > o.MaxFuture {
			return fmt.Errorf("%s: dated %s (Date), %s ahead of this node's clock: not valid yet, not used", path, v, ahead.Round(time.Second))
		}
	}
	return nil
}

// parseReleaseDate reads a date of a Release file, RFC 1123 in UTC as
// Debian writes it ("Sat, 10 Feb 2024 09:54:56 UTC"); apt takes GMT,
// "+0000" and a one-digit day too, and no other time zone.
func parseReleaseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	t, err := time.Parse("Mon, 2 Jan 2006 15:04:05 MST", s)
	if err != nil {
		return time.Time{}, errors.New(`not a date as "Sat, 10 Feb 2024 09:54:56 UTC"`)
	}
	switch name, off := t.Zone(); {
	case off != 0 || (name != "UTC" && name != "GMT" && name != "+0000"):
		return time.Time{}, errors.New("not in UTC")
	}
	return t.UTC(), nil
}

// releaseFields are the single-line fields of a Release file (Date,
// Valid-Until, Suite ...).
func releaseFields(b []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			if _, dup := m[k]; !dup {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	return m
}

// releaseSHA256 reads the SHA256 section of a Release file: path -> sum.
func releaseSHA256(b []byte) map[string]string {
	m := map[string]string{}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "SHA256:"):
			in = true
		case in && strings.HasPrefix(l, " "):
			f := strings.Fields(l)
			if len(f) == 3 {
				m[f[2]] = strings.ToLower(f[0])
			}
		default:
			in = false
		}
	}
	return m
}
