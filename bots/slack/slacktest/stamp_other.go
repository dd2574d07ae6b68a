//go:build !linux

package slacktest

import (
	"net"
	"time"
)

// stamped returns l: kernel receive timestamps are read on Linux only.
func stamped(l net.Listener) net.Listener { return l }

// arrival returns now.
func arrival(net.Conn) time.Time { return time.Now() }
