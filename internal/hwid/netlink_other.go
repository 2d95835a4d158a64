//go:build !linux

package hwid

import "errors"

// netlinkLinks is unavailable off Linux.
func netlinkLinks() ([]NIC, error) {
	return nil, errors.New("netlink link listing is only supported on Linux")
}
