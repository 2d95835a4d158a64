package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sentryha/sentry/lab"
)

const dialTimeout = 5 * time.Second

func officeDial(addr string) (net.Conn, error) {
	l := lab.New(lab.Options{Name: labName})
	c, err := lab.DialFrom(l.NS("office"), "tcp", addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, nil
}

// checkHTTP fetches / from the office and expects nginx's page.
func checkHTTP(host string) error {
	tr := &http.Transport{DialContext: nil, Dial: func(network, addr string) (net.Conn, error) { return officeDial(addr) }}
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := cl.Get("http://" + net.JoinHostPort(host, "80") + "/")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if !strings.Contains(string(body), "Welcome to nginx") {
		return fmt.Errorf("page has no nginx welcome: %.200q", body)
	}
	if sv := resp.Header.Get("Server"); !strings.HasPrefix(sv, "nginx") {
		return fmt.Errorf("Server header %q", sv)
	}
	return nil
}

// checkSMTP reads Postfix's greeting and expects EHLO to be answered.
func checkSMTP(host, hostname string) error {
	c, err := officeDial(net.JoinHostPort(host, "25"))
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	greet, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	// Postfix names itself by the node's hostname (node-p.localdomain).
	if !strings.HasPrefix(greet, "220 "+hostname+".") || !strings.Contains(greet, " ESMTP Postfix") {
		return fmt.Errorf("greeting %q, want 220 %s.* ESMTP Postfix", greet, hostname)
	}
	fmt.Fprintf(c, "EHLO office.lab\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("EHLO: %w", err)
		}
		if !strings.HasPrefix(line, "250") {
			return fmt.Errorf("EHLO answered %q", line)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return nil
}

// checkIMAP reads Dovecot's greeting and asks for its capabilities.
func checkIMAP(host string) error {
	c, err := officeDial(net.JoinHostPort(host, "143"))
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	greet, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	if !strings.HasPrefix(greet, "* OK") || !strings.Contains(greet, "Dovecot") {
		return fmt.Errorf("greeting %q", greet)
	}
	fmt.Fprintf(c, "a1 CAPABILITY\r\n")
	sawCap := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("CAPABILITY: %w", err)
		}
		if strings.HasPrefix(line, "* CAPABILITY") && strings.Contains(line, "STARTTLS") {
			sawCap = true
		}
		if strings.HasPrefix(line, "a1 ") {
			if !strings.HasPrefix(line, "a1 OK") || !sawCap {
				return fmt.Errorf("CAPABILITY ended %q (STARTTLS seen: %v)", line, sawCap)
			}
			break
		}
	}
	fmt.Fprintf(c, "a2 LOGOUT\r\n")
	return nil
}

// checkSMB sends an SMB2 NEGOTIATE and expects Samba to pick one of the
// offered dialects.
func checkSMB(host string) error {
	c, err := officeDial(net.JoinHostPort(host, "445"))
	if err != nil {
		return err
	}
	defer c.Close()
	dialects := []uint16{0x0202, 0x0210, 0x0300, 0x0302}
	hdr := make([]byte, 64)
	copy(hdr, "\xfeSMB")
	binary.LittleEndian.PutUint16(hdr[4:], 64) // StructureSize
	binary.LittleEndian.PutUint16(hdr[14:], 1) // CreditRequest
	body := make([]byte, 36)
	binary.LittleEndian.PutUint16(body[0:], 36)                    // StructureSize
	binary.LittleEndian.PutUint16(body[2:], uint16(len(dialects))) // DialectCount
	binary.LittleEndian.PutUint16(body[4:], 1)                     // SecurityMode: signing enabled
	copy(body[12:28], "sentry-e2e-guid!")                          // ClientGuid
	for _, d := range dialects {
		body = binary.LittleEndian.AppendUint16(body, d)
	}
	msg := append(hdr, body...)
	frame := make([]byte, 4, 4+len(msg))
	binary.BigEndian.PutUint32(frame, uint32(len(msg))) // NetBIOS session header: type 0, 24-bit length
	if _, err := c.Write(append(frame, msg...)); err != nil {
		return err
	}
	var nb [4]byte
	if _, err := io.ReadFull(c, nb[:]); err != nil {
		return fmt.Errorf("no NEGOTIATE answer: %w", err)
	}
	n := binary.BigEndian.Uint32(nb[:]) & 0xffffff
	if n < 64+8 || n > 1<<20 {
		return fmt.Errorf("answer of %d bytes", n)
	}
	resp := make([]byte, n)
	if _, err := io.ReadFull(c, resp); err != nil {
		return err
	}
	if string(resp[:4]) != "\xfeSMB" {
		return fmt.Errorf("answer is not SMB2: % x", resp[:4])
	}
	if st := binary.LittleEndian.Uint32(resp[8:]); st != 0 {
		return fmt.Errorf("NEGOTIATE status 0x%08x", st)
	}
	if cmd := binary.LittleEndian.Uint16(resp[12:]); cmd != 0 {
		return fmt.Errorf("answer to command %d", cmd)
	}
	got := binary.LittleEndian.Uint16(resp[64+4:])
	for _, d := range dialects {
		if d == got {
			return nil
		}
	}
	return fmt.Errorf("server chose dialect 0x%04x, not one offered", got)
}
