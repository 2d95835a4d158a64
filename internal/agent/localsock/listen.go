// Package localsock owns the agent's local API sockets and who may use
// them: the root-only socket (agent.socket, mode 0600) on which the whole
// API is served, and the read-only socket (agent.read_socket, mode 0660,
// group sentry) on which only the GET requests of an allow list are
// (ReadOnly). Each socket checks its peer's credentials (SO_PEERCRED) at
// every connection and closes a connection it does not serve.
package localsock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Group is the system group whose members get the read-only view.
const Group = "sentry"

// Listen opens the local API's sockets: root, served to root (and to the
// agent's own user, when a test runs it unprivileged), and read ("": none),
// served to them and to the members of group sentry, whose connections
// Server gives the read-only view. Without the group the read-only socket
// serves root only, and Listen logs so once.
func Listen(root, read string, log *slog.Logger) ([]net.Listener, error) {
	return listenWith(root, read, user.LookupGroup, log)
}

// listenWith is Listen with the group looked up by lookup (tests).
func listenWith(root, read string, lookup func(string) (*user.Group, error), log *slog.Logger) ([]net.Listener, error) {
	self := []uint32{0, uint32(os.Geteuid())}
	rl, err := listen(root, access{uids: self, gid: -1})
	if err != nil {
		return nil, err
	}
	if read == "" {
		return []net.Listener{rl}, nil
	}
	ro, err := listen(read, access{uids: self, gid: -1, readOnly: true})
	if err != nil {
		rl.Close()
		return nil, err
	}
	g, err := lookup(Group)
	var gid int
	if err == nil {
		gid, err = strconv.Atoi(g.Gid)
	}
	if err != nil {
		log.Warn(`the read-only socket serves root only: there is no group "sentry" (groupadd --system sentry; adduser USER sentry)`, "socket", read, "err", err)
		return []net.Listener{rl, ro}, nil
	}
	if err := share(read, gid); err != nil {
		log.Warn("the read-only socket serves root only: it could not be given to group sentry", "socket", read, "err", err)
	} else {
		ro.gid = gid
	}
	return []net.Listener{rl, ro}, nil
}

// access is who a socket serves.
type access struct {
	uids     []uint32 // these users, whatever their groups
	gid      int      // and the members of this group (-1: none)
	readOnly bool     // the read-only view (Server)
}

// listen opens a unix socket at path, mode 0600 (its folder made 0700 if
// missing), whose connections are checked against a.
func listen(path string, a access) (*listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("another agent already serves %s", path)
	}
	os.Remove(path)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("local api: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return &listener{UnixListener: ln.(*net.UnixListener), access: a}, nil
}

// share gives the socket at path to group gid (mode 0660) and lets the
// group through its folder (g+rx, the folder's group gid). The folder must
// be the agent's own and writable by it only (as /run/sentry is): no one
// else can then swap the socket for a link between the changes. It is
// changed through a descriptor opened without following a link.
func share(path string, gid int) error {
	dir := filepath.Dir(path)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s: not the agent's own folder, or writable by others (uid %d, mode %#o)", dir, st.Uid, st.Mode&0o7777)
	}
	if err := unix.Fchown(fd, -1, gid); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777|0o050); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if err := os.Lchown(path, -1, gid); err != nil {
		return err
	}
	return os.Chmod(path, 0o660)
}

// listener checks each connection's peer (SO_PEERCRED) and closes the
// connection of a peer it does not serve.
type listener struct {
	*net.UnixListener
	access
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		if l.serves(c) {
			return &conn{UnixConn: c, readOnly: l.readOnly}, nil
		}
		c.Close()
	}
}

// conn is a served connection, and whether it gets the read-only view.
type conn struct {
	*net.UnixConn
	readOnly bool
}

// serves says whether c's peer is one of the users served, or a member of
// the group: its group, or one of its supplementary groups (the Groups
// line of /proc/PID/status).
func (l *listener) serves(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	if slices.Contains(l.uids, cred.Uid) {
		return true
	}
	if l.gid < 0 {
		return false
	}
	if cred.Gid == uint32(l.gid) {
		return true
	}
	groups, err := peerGroups("", cred.Pid, cred.Uid)
	return err == nil && slices.Contains(groups, uint32(l.gid))
}

// peerGroups reads the supplementary groups of process pid from
// proc/PID/status ("" proc: /proc). The process must still be uid's (its
// effective user): a pid reused by another user's process is refused.
func peerGroups(proc string, pid int32, uid uint32) ([]uint32, error) {
	if proc == "" {
		proc = "/proc"
	}
	if pid <= 0 {
		return nil, fmt.Errorf("peer pid %d", pid)
	}
	f, err := os.Open(filepath.Join(proc, strconv.Itoa(int(pid)), "status"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	euid, groups, err := parseStatus(f)
	if err != nil {
		return nil, err
	}
	if euid != uid {
		return nil, fmt.Errorf("process %d is no longer user %d's", pid, uid)
	}
	return groups, nil
}

// parseStatus reads the effective uid (the second field of Uid:) and the
// supplementary groups (Groups:) of a /proc/PID/status file.
func parseStatus(r io.Reader) (euid uint32, groups []uint32, err error) {
	sc := bufio.NewScanner(r)
	var haveUID, haveGroups bool
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		switch key {
		case "Uid":
			if len(f) < 2 {
				return 0, nil, errors.New("status: bad Uid line")
			}
			u, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return 0, nil, fmt.Errorf("status: Uid: %w", err)
			}
			euid, haveUID = uint32(u), true
		case "Groups":
			for _, s := range f {
				g, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return 0, nil, fmt.Errorf("status: Groups: %w", err)
				}
				groups = append(groups, uint32(g))
			}
			haveGroups = true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, nil, err
	}
	if !haveUID || !haveGroups {
		return 0, nil, errors.New("status: no Uid or Groups line")
	}
	return euid, groups, nil
}
