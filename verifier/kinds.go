package verifier

import (
	"context"
	"fmt"
	"reflect"
	"sort"
)

// kinds are the compiled-in probe kinds, registered in one place (init
// below). Manifests name them; they never carry code.
var kinds = map[string]*kindDef{}

// kindDef is a registered kind: its typed parameters and its probe.
type kindDef struct {
	name     string
	typ      reflect.Type // *XParams
	fields   []field
	defaults func() Params
	run      func(ctx context.Context, p Params, rec *Recorder) error
}

// register adds a kind: defaults are its parameters when a manifest gives
// none, fn the probe, which receives them typed and checked.
func register[P any, PT interface {
	*P
	Params
}](name string, defaults P, fn func(ctx context.Context, p PT, rec *Recorder) error) {
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("verifier: probe kind %q registered twice", name))
	}
	t := reflect.TypeFor[PT]()
	kinds[name] = &kindDef{
		name:   name,
		typ:    t,
		fields: paramFields(t.Elem()),
		defaults: func() Params {
			p := new(P)
			*p = defaults
			return PT(p)
		},
		run: func(ctx context.Context, p Params, rec *Recorder) error { return fn(ctx, p.(PT), rec) },
	}
}

func init() {
	register("http", HTTPParams{Status: 200}, probeHTTP)
	register("tcp", TCPParams{}, probeTCP)
	register("systemd", SystemdParams{}, probeSystemd)
	register("disk", DiskParams{Path: "/", MinFreePercent: 10}, probeDisk)
	register("raid", RAIDParams{MDStat: "/proc/mdstat"}, probeRAID)
	register("backup", BackupParams{MaxAge: defaultMaxAge, Restic: "restic"}, probeBackup)
	register("postgres", DBParams{Host: "127.0.0.1", Port: 5432, Table: CanaryDB}, probePostgres)
	register("mysql", DBParams{Host: "127.0.0.1", Port: 3306, Table: CanaryDB}, probeMySQL)
	register("mail", MailParams{SMTP: "127.0.0.1:25", IMAP: "127.0.0.1:143", SMTPTLS: "starttls", VisibleWithin: defaultVisibleWithin}, probeMail)
	register("smb", SMBParams{Address: "127.0.0.1:445", Size: defaultFileSize}, probeSMB)
	register("sftp", SFTPParams{Address: "127.0.0.1:22", HostKeyAlgorithm: defaultHostKeyAlgorithm, Dir: ".", Size: defaultFileSize}, probeSFTP)
}

// Known says whether kind is compiled in.
func Known(kind string) bool { return kinds[kind] != nil }

// KindNames lists the registered kinds, sorted.
func KindNames() []string {
	var ns []string
	for k := range kinds {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return ns
}
