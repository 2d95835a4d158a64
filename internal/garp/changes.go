package garp

import (
	"context"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Changes tells when the kernel adds or removes an IPv4 address or changes
// a link (netlink's RTMGRP_IPV4_IFADDR and RTMGRP_LINK groups): a value on
// the channel, at most one pending, for any number of changes since the
// last one taken. The channel is closed when ctx ends or the socket
// fails. With it, Addresses is read when something changed rather than
// polled.
func Changes(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_LINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "netlink") // non-blocking: Read waits in the poller, Close ends it
	ch := make(chan struct{}, 1)
	stop := context.AfterFunc(ctx, func() { f.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer f.Close()
		buf := make([]byte, 32<<10)
		for {
			_, err := f.Read(buf)
			if err != nil && !errors.Is(err, unix.ENOBUFS) { // ENOBUFS: messages lost, so something changed
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}
