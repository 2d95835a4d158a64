package verifier

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// token makes a unique canary token.
func token() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "sentry-canary-" + hex.EncodeToString(b)
}

// DBParams are the parameters of the postgres and mysql probes.
type DBParams struct {
	Host     string `param:"host"`      // default 127.0.0.1
	Port     int    `param:"port,port"` // default 5432 (postgres), 3306 (mysql)
	User     string `param:"user,required"`
	Password string `param:"password"`
	Database string `param:"database,required"`
	// Table is the canary table (default sentry_canary), with the columns
	// token (text) and created (a timestamp).
	Table string `param:"table,ident"`
}

func (*DBParams) probeParams() {}

// probePostgres connects as the canary user, writes a row with a unique
// token into the canary table, reads it back and deletes it. A server-side
// statement_timeout backs the context's deadline.
func probePostgres(ctx context.Context, p *DBParams, rec *Recorder) error {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return err
	}
	cfg.Host, cfg.User, cfg.Password, cfg.Database = p.Host, p.User, p.Password, p.Database
	cfg.Port = uint16(p.Port)
	if dl, ok := ctx.Deadline(); ok {
		// The server gives up a little before the context does, so that a
		// statement stuck on the server (a lock, a full disk) is cancelled
		// there and says so, rather than left running behind a closed
		// connection.
		ms := serverTimeout(time.Until(dl)).Milliseconds()
		if ms < 1 {
			ms = 1
		}
		cfg.RuntimeParams["statement_timeout"] = fmt.Sprint(ms)
		cfg.ConnectTimeout = time.Until(dl)
	}
	table := pgx.Identifier{p.Table}.Sanitize()
	var conn *pgx.Conn
	if err := rec.Phase("connect", func() error {
		conn, err = pgx.ConnectConfig(ctx, cfg)
		return err
	}); err != nil {
		return err
	}
	rec.Cleanup(func(c context.Context) { conn.Close(c) })
	return rowRoundTrip(ctx, rec, rowTrip{
		write: func(tok string) error {
			_, err := conn.Exec(ctx, "INSERT INTO "+table+" (token, created) VALUES ($1, now())", tok)
			return err
		},
		read: func(tok string) (got string, err error) {
			err = conn.QueryRow(ctx, "SELECT token FROM "+table+" WHERE token = $1", tok).Scan(&got)
			return got, err
		},
		del: func(c context.Context, tok string) error {
			_, err := conn.Exec(c, "DELETE FROM "+table+" WHERE token = $1 OR created < now() - make_interval(secs => $2)", tok, SweepAge.Seconds())
			return err
		},
	})
}

// serverTimeout is the server-side statement timeout for a probe with left
// until its deadline: nine tenths of it, so the server's cancel comes first.
func serverTimeout(left time.Duration) time.Duration { return left * 9 / 10 }

// probeMySQL does the same round trip against MariaDB or MySQL, with read
// and write timeouts (the DSN's timeout covers only the dial) and a
// server-side max_statement_time.
func probeMySQL(ctx context.Context, p *DBParams, rec *Recorder) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.User, p.Password, p.Database
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(p.Host, fmt.Sprint(p.Port))
	left := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = left, left, left
	cfg.Params = map[string]string{"max_statement_time": fmt.Sprintf("%.3f", serverTimeout(left).Seconds())}
	table := "`" + p.Table + "`"
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	rec.Cleanup(func(context.Context) { db.Close() })
	db.SetMaxOpenConns(1)
	if err := rec.Phase("connect", func() error { return db.PingContext(ctx) }); err != nil {
		return err
	}
	return rowRoundTrip(ctx, rec, rowTrip{
		write: func(tok string) error {
			_, err := db.ExecContext(ctx, "INSERT INTO "+table+" (token, created) VALUES (?, NOW())", tok)
			return err
		},
		read: func(tok string) (got string, err error) {
			err = db.QueryRowContext(ctx, "SELECT token FROM "+table+" WHERE token = ?", tok).Scan(&got)
			return got, err
		},
		del: func(c context.Context, tok string) error {
			_, err := db.ExecContext(c, "DELETE FROM "+table+" WHERE token = ? OR created < NOW() - INTERVAL ? SECOND", tok, int(SweepAge.Seconds()))
			return err
		},
	})
}
