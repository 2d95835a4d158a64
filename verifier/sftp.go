package verifier

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SFTPParams are the sftp probe's parameters.
type SFTPParams struct {
	Address  string `param:"address,hostport"` // default 127.0.0.1:22
	User     string `param:"user,required"`
	Password string `param:"password"`
	// HostKey pins the server's host key by its SHA-256 fingerprint, as
	// ssh-keygen -lf prints it ("SHA256:...").
	HostKey          string `param:"host_key,required"`
	HostKeyAlgorithm string `param:"host_key_algorithm"` // default ssh-ed25519
	Dir              string `param:"dir"`                // default "."
	Size             int    `param:"size,size"`          // default 65536
}

func (*SFTPParams) probeParams() {}

const defaultHostKeyAlgorithm = ssh.KeyAlgoED25519

// probeSFTP logs in over SSH as the canary user, writes a file of random
// content in the canary folder, reads it back, compares SHA-256 and deletes
// it. The host key is pinned by its SHA-256 fingerprint (as ssh-keygen -lf
// prints it, "SHA256:...").
func probeSFTP(ctx context.Context, p *SFTPParams, rec *Recorder) error {
	user, pin, size, addr := p.User, p.HostKey, p.Size, p.Address
	var (
		client *ssh.Client
		err    error
	)
	if err := rec.Phase("ssh login", func() error {
		conn, err := dialCtx(ctx, addr)
		if err != nil {
			return err
		}
		cfg := &ssh.ClientConfig{
			User: user,
			// The pinned key's algorithm: ed25519 unless said otherwise.
			HostKeyAlgorithms: []string{p.HostKeyAlgorithm},
			Auth:              []ssh.AuthMethod{ssh.Password(p.Password)},
			HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
				if got := ssh.FingerprintSHA256(key); got != pin {
					return fmt.Errorf("host key %s is not the pinned %s", got, pin)
				}
				return nil
			},
		}
		c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
		if err != nil {
			conn.Close()
			return err
		}
		client = ssh.NewClient(c, chans, reqs)
		return nil
	}); err != nil {
		return err
	}
	rec.Cleanup(func(context.Context) { client.Close() })
	var sc *sftp.Client
	if err := rec.Phase("sftp session", func() error {
		sc, err = sftp.NewClient(client)
		return err
	}); err != nil {
		return err
	}
	rec.Cleanup(func(context.Context) { sc.Close() })
	return fileRoundTrip(rec, p.Dir, size, fileTrip{
		write: func(name string, data []byte) error {
			f, err := sc.Create(name)
			if err != nil {
				return err
			}
			if _, err := f.Write(data); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
		read: func(name string, max int) ([]byte, error) {
			f, err := sc.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return io.ReadAll(io.LimitReader(f, int64(max)))
		},
		remove: sc.Remove,
		list:   sc.ReadDir,
	})
}
