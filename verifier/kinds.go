package verifier

import "fmt"

// Kinds are the compiled-in probe kinds: the one place they are
// registered. Manifests name them; they never carry code.
var Kinds = map[string]ProbeFn{}

func register(name string, fn ProbeFn) {
	if _, dup := Kinds[name]; dup {
		panic(fmt.Sprintf("verifier: probe kind %q registered twice", name))
	}
	Kinds[name] = fn
}

func init() {
	register("http", probeHTTP)
	register("tcp", probeTCP)
	register("systemd", probeSystemd)
	register("disk", probeDisk)
	register("raid", probeRAID)
	register("backup", probeBackup)
	register("postgres", probePostgres)
	register("mysql", probeMySQL)
	register("mail", probeMail)
	register("smb", probeSMB)
	register("sftp", probeSFTP)
}
