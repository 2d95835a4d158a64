package verifier

import (
	"context"

	"github.com/cloudsoda/go-smb2"
)

// probeSMB logs in to a share as the canary user, writes a file of random
// content, reads it back, compares SHA-256 and deletes it.
//
// Params: address (host:port, default 127.0.0.1:445), share (required),
// user, password, size (bytes, default 65536).
func probeSMB(ctx context.Context, p Params, rec *Recorder) error {
	share, err := p.Require("share")
	if err != nil {
		return err
	}
	user, err := p.Require("user")
	if err != nil {
		return err
	}
	size, err := p.Int("size", 65536)
	if err != nil {
		return err
	}
	var sess *smb2.Session
	if err := rec.Phase("session", func() error {
		conn, err := dialCtx(ctx, p.Get("address", "127.0.0.1:445"))
		if err != nil {
			return err
		}
		d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: p.Get("password", "")}}
		sess, err = d.DialConn(ctx, conn, p.Get("address", "127.0.0.1:445"))
		if err != nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return err
	}
	rec.Cleanup(func(context.Context) { sess.Logoff() })
	var fs *smb2.Share
	if err := rec.Phase("mount share", func() error {
		fs, err = sess.Mount(share)
		return err
	}); err != nil {
		return err
	}
	rec.Cleanup(func(context.Context) { fs.Umount() })
	return fileRoundTrip(rec, "", size, fileTrip{
		write:  func(name string, data []byte) error { return fs.WriteFile(name, data, 0o644) },
		read:   func(name string, _ int) ([]byte, error) { return fs.ReadFile(name) },
		remove: fs.Remove,
	})
}
