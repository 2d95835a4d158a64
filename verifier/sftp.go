package verifier

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// probeSFTP logs in over SSH as the canary user, writes a file of random
// content in the canary folder, reads it back, compares SHA-256 and deletes
// it. The host key is pinned by its SHA-256 fingerprint (as ssh-keygen -lf
// prints it, "SHA256:...").
//
// Params: address (127.0.0.1:22), user, password, host_key (required),
// host_key_algorithm (default ssh-ed25519), dir (default "."), size
// (default 65536).
func probeSFTP(ctx context.Context, p Params, rec *Recorder) error {
	user, err := p.Require("user")
	if err != nil {
		return err
	}
	pin, err := p.Require("host_key")
	if err != nil {
		return err
	}
	size, err := p.Int("size", 65536)
	if err != nil {
		return err
	}
	addr := p.Get("address", "127.0.0.1:22")
	var client *ssh.Client
	if err := rec.Phase("ssh login", func() error {
		conn, err := dialCtx(ctx, addr)
		if err != nil {
			return err
		}
		cfg := &ssh.ClientConfig{
			User: user,
			// The pinned key's algorithm: ed25519 unless said otherwise.
			HostKeyAlgorithms: []string{p.Get("host_key_algorithm", ssh.KeyAlgoED25519)},
			Auth:              []ssh.AuthMethod{ssh.Password(p.Get("password", ""))},
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
	return fileRoundTrip(rec, p.Get("dir", "."), size, fileTrip{
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
	})
}
