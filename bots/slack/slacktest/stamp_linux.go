//go:build linux

package slacktest

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// stamped returns l with connections that note when the kernel received the
// bytes each Read returns (SO_TIMESTAMPNS). An ack's latency then ends when
// the ack reached the fake, as Slack would time it, and not when one of the
// fake's goroutines got a CPU to read it: the fake shares the machine with
// the app it measures.
func stamped(l net.Listener) net.Listener { return stampListener{l} }

// arrival returns when the bytes c's last Read returned reached the kernel,
// or now if that is not known.
func arrival(c net.Conn) time.Time {
	if sc, ok := c.(*stampConn); ok {
		if ns := sc.last.Load(); ns != 0 {
			return time.Unix(0, ns)
		}
	}
	return time.Now()
}

type stampListener struct{ net.Listener }

// Accept returns the next connection, stamped if it is TCP and the kernel
// agrees; as it is otherwise.
func (l stampListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	if err != nil || serr != nil {
		return c, nil
	}
	return &stampConn{Conn: tc, raw: raw}, nil
}

// stampConn is a TCP connection whose Read uses recvmsg, to get the
// kernel's receive timestamp of the bytes read. It embeds the connection
// as a net.Conn, not a *net.TCPConn, whose WriteTo would read past Read.
type stampConn struct {
	net.Conn // a *net.TCPConn
	raw      syscall.RawConn
	last     atomic.Int64 // Unix nanoseconds of the last Read's bytes; 0 if unknown
}

func (c *stampConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var oob [64]byte
	var n, oobn int
	var err error
	rerr := c.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, err = syscall.Recvmsg(int(fd), p, oob[:], 0)
		if err == nil {
			// A read(2) of nothing, which costs the kernel nothing: under
			// the race detector syscall.Read, unlike Recvmsg, marks what
			// follows as after every earlier write to a socket, as reads
			// through the net package do, and tests of one process rely
			// on it.
			_, _ = syscall.Read(int(fd), nil)
		}
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
	switch {
	case rerr != nil: // a deadline, or the connection closed
		return 0, rerr
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("recvmsg", err)}
	case n == 0:
		return 0, io.EOF
	}
	if ns, ok := receivedAt(oob[:oobn]); ok {
		c.last.Store(ns)
	}
	return n, nil
}

// CloseWrite shuts the sending side down, as net/http's server asks of
// connections that can.
func (c *stampConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// receivedAt returns the SCM_TIMESTAMPNS timestamp in oob, in Unix
// nanoseconds.
func receivedAt(oob []byte) (int64, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS &&
			len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			return ts.Nano(), true
		}
	}
	return 0, false
}
