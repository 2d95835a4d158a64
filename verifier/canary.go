package verifier

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sentryha/sentry/internal/atomicfile"
	"golang.org/x/crypto/ssh"
)

// The canary account, database, table, share and page: the same names on
// both nodes. Its password is derived from the cluster key on each node
// (CanaryPassword), so it is never stored, never sent, and the same on both.
const (
	CanaryUser   = "sentry-canary"
	CanaryDB     = "sentry_canary"
	CanaryShare  = "sentry-canary"
	CanaryDir    = "/srv/sentry-canary"
	CanaryMarker = "sentry-canary-ok"
)

// The files setup writes and the default probes read, on a node.
const (
	CanaryPage     = "/var/www/html/sentry-canary.html"
	SmbConf        = "/etc/samba/smb.conf"
	SshdCanaryConf = "/etc/ssh/sshd_config.d/sentry-canary.conf"
	MailCert       = "/etc/dovecot/private/dovecot.pem"
	SSHHostKey     = "/etc/ssh/ssh_host_ed25519_key.pub"
)

// Paths are the files setup writes and the default probes read: fields,
// so that a test (or a system mounted elsewhere) points them at a tree.
type Paths struct {
	CanaryPage     string
	SmbConf        string
	SshdCanaryConf string
	MailCert       string
	SSHHostKey     string
}

// SystemPaths are the paths on a node.
func SystemPaths() Paths { return PathsAt("/") }

// PathsAt are the node's paths under root.
func PathsAt(root string) Paths {
	return Paths{
		CanaryPage:     filepath.Join(root, CanaryPage),
		SmbConf:        filepath.Join(root, SmbConf),
		SshdCanaryConf: filepath.Join(root, SshdCanaryConf),
		MailCert:       filepath.Join(root, MailCert),
		SSHHostKey:     filepath.Join(root, SSHHostKey),
	}
}

// run runs a setup command, its output in the error.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Page is a canary web page: where setup writes it and the marker it holds
// (which the http probe looks for).
type Page struct {
	Path   string `json:"path"`
	Marker string `json:"marker"`
}

// write puts the page in place atomically (temp file, fsync, rename).
func (pg Page) write() error {
	if !filepath.IsAbs(pg.Path) || pg.Marker == "" || strings.ContainsAny(pg.Marker, "<>&\"'\n\r") {
		return fmt.Errorf("canary page %q with marker %q: need an absolute path and a marker without <, >, &, quotes or line breaks (the http probe looks for it as it is)", pg.Path, pg.Marker)
	}
	if err := os.MkdirAll(filepath.Dir(pg.Path), 0o755); err != nil {
		return err
	}
	page := "<!doctype html><title>sentry canary</title><p>" + pg.Marker + "</p>\n"
	return atomicfile.Write(pg.Path, []byte(page), 0o644)
}

// SetupStep is one part of the canary setup, by service.
type SetupStep struct {
	Service string `json:"service"`
	Error   string `json:"error,omitempty"`
}

// Setup makes (or repairs) this node's canaries, idempotently: the canary
// system account (mailbox, sftp, smb), its Samba password and share, the
// PostgreSQL and MariaDB canary users and tables, the canary web page. It
// runs the services' own tools as root; nothing of it crosses from the
// primary.
//
// pages are the canary pages to write (the selected modules' [canary]
// tables); none is the compiled-in one, CanaryPage with CanaryMarker.
func Setup(ctx context.Context, password string, pages ...Page) []SetupStep {
	return SystemPaths().Setup(ctx, password, pages...)
}

// Setup is Setup with the files at paths.
func (paths Paths) Setup(ctx context.Context, password string, pages ...Page) []SetupStep {
	if len(pages) == 0 {
		pages = []Page{{Path: paths.CanaryPage, Marker: CanaryMarker}}
	}
	steps := []struct {
		service string
		f       func() error
	}{
		{"account", func() error {
			if exec.CommandContext(ctx, "id", CanaryUser).Run() != nil {
				if err := run(ctx, "", "useradd", "--create-home", "--shell", "/bin/sh", CanaryUser); err != nil {
					return err
				}
			}
			if err := run(ctx, CanaryUser+":"+password+"\n", "chpasswd"); err != nil {
				return err
			}
			// SSH for the canary is SFTP only.
			conf := "# Written by sentry verifier setup.\nMatch User " + CanaryUser + "\n\tForceCommand internal-sftp\n\tAllowTcpForwarding no\n\tX11Forwarding no\n"
			if err := os.MkdirAll("/etc/ssh/sshd_config.d", 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(paths.SshdCanaryConf, []byte(conf), 0o644); err != nil {
				return err
			}
			return run(ctx, "", "systemctl", "reload-or-restart", "ssh")
		}},
		{"web", func() error {
			for _, pg := range pages {
				if err := pg.write(); err != nil {
					return err
				}
			}
			return nil
		}},
		{"smb", func() error {
			if err := os.MkdirAll(CanaryDir, 0o750); err != nil {
				return err
			}
			if err := run(ctx, "", "chown", CanaryUser+":", CanaryDir); err != nil {
				return err
			}
			if err := run(ctx, password+"\n"+password+"\n", "smbpasswd", "-s", "-a", CanaryUser); err != nil {
				return err
			}
			b, err := os.ReadFile(paths.SmbConf)
			if err != nil {
				return err
			}
			if !bytes.Contains(b, []byte("["+CanaryShare+"]")) {
				share := fmt.Sprintf("\n# Written by sentry verifier setup: the verifier's canary share.\n[%s]\n   path = %s\n   read only = no\n   valid users = %s\n", CanaryShare, CanaryDir, CanaryUser)
				f, err := os.OpenFile(paths.SmbConf, os.O_APPEND|os.O_WRONLY, 0o644)
				if err != nil {
					return err
				}
				_, err = f.WriteString(share)
				f.Close()
				if err != nil {
					return err
				}
			}
			return run(ctx, "", "systemctl", "reload", "smbd")
		}},
		{"postgres", func() error {
			sql := fmt.Sprintf(`SELECT 'CREATE ROLE %[1]s LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s')
\gexec
ALTER ROLE %[1]s LOGIN PASSWORD '%[2]s';
SELECT 'CREATE DATABASE %[1]s' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '%[1]s')
\gexec
\c %[1]s
CREATE TABLE IF NOT EXISTS %[1]s (token text PRIMARY KEY, created timestamptz NOT NULL);
REVOKE ALL ON %[1]s FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON %[1]s TO %[1]s;
`, CanaryDB, password)
			return run(ctx, sql, "runuser", "-u", "postgres", "--", "psql", "-Xq", "-v", "ON_ERROR_STOP=1")
		}},
		{"mysql", func() error {
			sql := fmt.Sprintf(`CREATE DATABASE IF NOT EXISTS %[1]s;
CREATE USER IF NOT EXISTS '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s';
ALTER USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s';
CREATE TABLE IF NOT EXISTS %[1]s.%[1]s (token VARCHAR(64) PRIMARY KEY, created DATETIME NOT NULL);
GRANT SELECT, INSERT, DELETE ON %[1]s.%[1]s TO '%[1]s'@'127.0.0.1';
`, CanaryDB, password)
			return run(ctx, sql, "mariadb")
		}},
	}
	var out []SetupStep
	for _, s := range steps {
		st := SetupStep{Service: s.service}
		if err := s.f(); err != nil {
			st.Error = err.Error()
		}
		out = append(out, st)
	}
	return out
}

// CertFingerprint is the SHA-256 of the first certificate in a PEM file
// (the mail probe pins it).
func CertFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", fmt.Errorf("%s holds no PEM certificate", path)
	}
	s := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(s[:]), nil
}

// HostKeyFingerprint is ssh's SHA256:... of a public key file (the sftp
// probe pins it).
func HostKeyFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return ssh.FingerprintSHA256(k), nil
}

// DefaultProbes is this node's probe set for the services the lab (and a
// typical office server) runs, with the canary's password. The pinned
// certificate and host key are read from this node's own files. Modules
// (the built-in modules) supply the same per service.
func DefaultProbes(password string, timeout time.Duration) []Spec {
	return SystemPaths().DefaultProbes(password, timeout)
}

// DefaultProbes is DefaultProbes with the certificate and host key read
// at paths.
func (paths Paths) DefaultProbes(password string, timeout time.Duration) []Spec {
	var out []Spec
	add := func(name, kind string, kv map[string]string) {
		p, err := ParseParams(kind, kv)
		if err != nil {
			panic(fmt.Sprintf("verifier: default probe %s: %v", name, err))
		}
		out = append(out, Spec{Name: name, Kind: kind, Params: p, Timeout: timeout})
	}
	add("web", "http", map[string]string{"url": "http://127.0.0.1/sentry-canary.html", "marker": CanaryMarker})
	mail := map[string]string{"to": CanaryUser + "@localhost", "user": CanaryUser, "password": password}
	if fp, err := CertFingerprint(paths.MailCert); err == nil {
		mail["tls_fingerprint"] = fp
	}
	add("mail", "mail", mail)
	add("postgres", "postgres", map[string]string{"user": CanaryDB, "password": password, "database": CanaryDB})
	add("mysql", "mysql", map[string]string{"user": CanaryDB, "password": password, "database": CanaryDB})
	add("smb", "smb", map[string]string{"share": CanaryShare, "user": CanaryUser, "password": password})
	sftp := map[string]string{"user": CanaryUser, "password": password, "host_key": "unknown"}
	if fp, err := HostKeyFingerprint(paths.SSHHostKey); err == nil {
		sftp["host_key"] = fp
	}
	add("sftp", "sftp", sftp)
	for _, u := range []string{"nginx", "postfix", "dovecot", "postgresql", "mariadb", "smbd", "ssh"} {
		add("unit "+u, "systemd", map[string]string{"unit": u + ".service"})
	}
	add("disk /", "disk", map[string]string{"path": "/", "min_free_percent": "10"})
	add("raid", "raid", nil)
	return out
}
