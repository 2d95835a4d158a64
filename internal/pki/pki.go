// Package pki makes and checks the cluster's certificates: a cluster CA made
// by `sentry init` on the primary, and one certificate per node, signed from
// the node's own certificate request. The agents talk over mutual TLS and
// accept only certificates of their own cluster CA.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
)

// Lifetimes of what init and join make.
const (
	CALifetime   = 20 * 365 * 24 * time.Hour
	NodeLifetime = 10 * 365 * 24 * time.Hour
)

// Files of a node's PKI folder (state_dir/pki).
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key" // only on the disk set that made the cluster
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
	// ClusterKeyFile is the cluster's age key for encrypted secrets (0600,
	// on both nodes).
	ClusterKeyFile = "cluster.agekey"
)

// NewKey makes a P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// CA is the cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// NewCA makes the CA of cluster id.
func NewCA(clusterID, clusterName string, now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "sentry cluster " + clusterName, Organization: []string{clusterID}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// ClusterID returns the cluster id a CA or node certificate carries.
func ClusterID(c *x509.Certificate) string {
	if len(c.Subject.Organization) == 0 {
		return ""
	}
	return c.Subject.Organization[0]
}

// NewCSR makes a certificate request for node name.
func NewCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name},
	}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// SignCSR checks a node's request (well-formed, self-signed, for name) and
// returns the node certificate as PEM.
func (ca *CA) SignCSR(csrPEM []byte, name string, now time.Time) ([]byte, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("certificate request is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	if csr.Subject.CommonName != name {
		return nil, fmt.Errorf("certificate request is for %q, the join is for %q", csr.Subject.CommonName, name)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("certificate request key is not ECDSA")
	}
	return ca.sign(pub, name, now)
}

// SignKey makes a node certificate for a key made here (the primary's own).
func (ca *CA) SignKey(key *ecdsa.PrivateKey, name string, now time.Time) ([]byte, error) {
	return ca.sign(&key.PublicKey, name, now)
}

func (ca *CA) sign(pub *ecdsa.PublicKey, name string, now time.Time) ([]byte, error) {
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name, Organization: []string{ClusterID(ca.Cert)}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(NodeLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// CertPEM encodes a certificate.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes a private key.
func KeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// ParseCert reads one PEM certificate.
func ParseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM CERTIFICATE")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ParseKey reads one PEM EC private key.
func ParseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "EC PRIVATE KEY" {
		return nil, errors.New("not a PEM EC PRIVATE KEY")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

// Node is what a node holds: the CA certificate, its own certificate and
// key, and (on the disk set that made the cluster) the CA key.
type Node struct {
	CA      *x509.Certificate
	CAKey   *ecdsa.PrivateKey // nil on a joined node
	Cert    tls.Certificate
	Leaf    *x509.Certificate
	Name    string
	Cluster string
}

// Save writes the node's files into dir: keys 0600, certificates 0644.
func Save(dir string, caCert *x509.Certificate, caKey *ecdsa.PrivateKey, certPEM []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keyPEM, err := KeyPEM(key)
	if err != nil {
		return err
	}
	if caKey != nil {
		caKeyPEM, err := KeyPEM(caKey)
		if err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, CAKeyFile), caKeyPEM, 0o600); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(filepath.Join(dir, NodeKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, NodeCertFile), certPEM, 0o644); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, CACertFile), CertPEM(caCert), 0o644)
}

// Load reads a node's files from dir and checks that they belong together.
func Load(dir string) (*Node, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		return b, nil
	}
	caPEM, err := read(CACertFile)
	if err != nil {
		return nil, err
	}
	ca, err := ParseCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CACertFile), err)
	}
	certPEM, err := read(NodeCertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(NodeKeyFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, NodeCertFile), err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, fmt.Errorf("%s is not signed by %s: %w", filepath.Join(dir, NodeCertFile), filepath.Join(dir, CACertFile), err)
	}
	pair.Certificate = append(pair.Certificate, ca.Raw)
	pair.Leaf = leaf
	n := &Node{CA: ca, Cert: pair, Leaf: leaf, Name: leaf.Subject.CommonName, Cluster: ClusterID(ca)}
	if b, err := read(CAKeyFile); err == nil {
		if n.CAKey, err = ParseKey(b); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, CAKeyFile), err)
		}
	}
	return n, nil
}

// Signer returns the CA for signing, or an error on a node without CA key.
func (n *Node) Signer() (*CA, error) {
	if n.CAKey == nil {
		return nil, errors.New("this node holds no CA key (only the disk set that ran `sentry init` does)")
	}
	return &CA{Cert: n.CA, Key: n.CAKey}, nil
}

func (n *Node) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(n.CA)
	return p
}

// ServerTLS is the peer port's configuration. A client certificate is
// verified against the cluster CA when given; handlers that need one (all
// but join) insist on it.
func (n *Node) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{n.Cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    n.pool(),
	}
}

// ClientTLS is the configuration for calling peer name: the server must
// show a certificate of this cluster's CA for that name; host names and IP
// addresses play no part (the nodes move between machines).
func (n *Node) ClientTLS(peerName string) *tls.Config {
	pool := n.pool()
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{n.Cert},
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, pool, peerName, x509.ExtKeyUsageServerAuth)
		},
	}
}

// JoinTLS is the configuration of a node that has no certificate yet: it
// trusts the server only if its chain leads to the CA whose fingerprint the
// join token carries.
func JoinTLS(caFingerprint string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				if c.IsCA && Fingerprint(c) == caFingerprint {
					pool := x509.NewCertPool()
					pool.AddCert(c)
					return verifyPeer(cs, pool, "", x509.ExtKeyUsageServerAuth)
				}
			}
			return errors.New("the primary's certificate does not lead to the CA named in the join token")
		},
	}
}

// VerifyClient checks a client's verified chain for name ("" for any node
// of the cluster) and returns the client's node name.
func VerifyClient(cs *tls.ConnectionState, expect string) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("no client certificate of this cluster")
	}
	name := cs.VerifiedChains[0][0].Subject.CommonName
	if expect != "" && name != expect {
		return name, fmt.Errorf("client certificate is for %q, the peer is %q", name, expect)
	}
	return name, nil
}

func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool, name string, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	if name != "" && leaf.Subject.CommonName != name {
		return fmt.Errorf("peer certificate is for %q, expected %q", leaf.Subject.CommonName, name)
	}
	return nil
}
