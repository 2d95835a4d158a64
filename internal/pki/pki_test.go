package pki

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSignAndLoad(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("cid", "office", now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := NewKey()
	csr, _ := NewCSR(key, "node-s")
	if _, err := ca.SignCSR(csr, "node-x", now); err == nil || !strings.Contains(err.Error(), `is for "node-s"`) {
		t.Errorf("CSR for another name signed: %v", err)
	}
	if _, err := ca.SignCSR([]byte("junk"), "node-s", now); err == nil {
		t.Error("junk CSR signed")
	}
	cert, err := ca.SignCSR(csr, "node-s", now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Save(dir, ca.Cert, nil, cert, key); err != nil {
		t.Fatal(err)
	}
	n, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "node-s" || n.Cluster != "cid" || n.CAKey != nil {
		t.Errorf("loaded %+v", n)
	}
	if _, err := n.Signer(); err == nil {
		t.Error("a node without CA key can sign")
	}
	// A node certificate from another CA does not load with this CA.
	other, _ := NewCA("other", "x", now)
	k2, _ := NewKey()
	c2, _ := other.SignKey(k2, "node-s", now)
	os.WriteFile(filepath.Join(dir, NodeCertFile), c2, 0o644)
	k2pem, _ := KeyPEM(k2)
	os.WriteFile(filepath.Join(dir, NodeKeyFile), k2pem, 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "is not signed by") {
		t.Errorf("mixed CA loaded: %v", err)
	}
}

// A real TLS connection: the client pins the server's name and the CA.
func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("cid", "office", now)
	mk := func(name string) *Node {
		dir := t.TempDir()
		k, _ := NewKey()
		c, _ := ca.SignKey(k, name, now)
		if err := Save(dir, ca.Cert, nil, c, k); err != nil {
			t.Fatal(err)
		}
		n, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	srv, cli := mk("node-p"), mk("node-s")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	names := make(chan string, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				cs := tc.ConnectionState()
				n, _ := VerifyClient(&cs, "")
				names <- n
			}
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli.ClientTLS("node-p"))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-names; got != "node-s" {
		t.Errorf("server saw client %q", got)
	}
	// Expecting another name fails on the client side.
	if c, err := tls.Dial("tcp", ln.Addr().String(), cli.ClientTLS("node-q")); err == nil {
		c.Close()
		t.Error("client accepted a server with another name")
	}
	// The join configuration trusts only the pinned CA.
	if c, err := tls.Dial("tcp", ln.Addr().String(), JoinTLS(Fingerprint(ca.Cert))); err != nil {
		t.Errorf("join with the right pin: %v", err)
	} else {
		c.Close()
	}
	if c, err := tls.Dial("tcp", ln.Addr().String(), JoinTLS(strings.Repeat("0", 64))); err == nil {
		c.Close()
		t.Error("join trusted a server not under the pinned CA")
	}
}
