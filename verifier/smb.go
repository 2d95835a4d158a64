package verifier

import (
	"context"
	"os"

	"github.com/cloudsoda/go-smb2"
)

// SMBParams are the smb probe's parameters.
type SMBParams struct {
	Address  string `param:"address,hostport"` // default 127.0.0.1:445
	Share    string `param:"share,required"`
	User     string `param:"user,required"`
	Password string `param:"password"`
	Size     int    `param:"size,size"` // bytes written and read back (default 65536)
}

func (*SMBParams) probeParams() {}

// defaultFileSize is what the file probes write and read back.
const defaultFileSize = 65536

// probeSMB logs in to a share as the canary user, writes a file of random
// content, reads it back, compares SHA-256 and deletes it.
func probeSMB(ctx context.Context, p *SMBParams, rec *Recorder) error {
	share, user, size := p.Share, p.User, p.Size
	var (
		sess *smb2.Session
		err  error
	)
	if err := rec.Phase("session", func() error {
		conn, err := dialCtx(ctx, p.Address)
		if err != nil {
			return err
		}
		d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: p.Password}}
		sess, err = d.DialConn(ctx, conn, p.Address)
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
		list: func(dir string) ([]os.FileInfo, error) {
			if dir == "" {
				dir = "."
			}
			return fs.ReadDir(dir)
		},
	})
}
