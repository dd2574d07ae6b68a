package slacktest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// A stamped connection tells when the bytes read reached the kernel, not
// when they were read; deadlines and the end of the stream work as on any
// connection.
func TestStampedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := stamped(ln)
	defer l.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(*stampConn); !ok {
		t.Fatalf("the listener returned a %T, not a stamped connection", conn)
	}

	_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := conn.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past its deadline: %v, want a timeout", err)
	}
	_ = conn.SetReadDeadline(time.Time{})

	sent := time.Now()
	if _, err := client.Write([]byte("ack")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the fake busy elsewhere
	buf := make([]byte, 8)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "ack" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	read := time.Now()
	at := arrival(conn)
	if at.Before(sent.Add(-time.Millisecond)) || !at.Before(read.Add(-200*time.Millisecond)) {
		t.Errorf("arrival %s after the write and %s before the read; want it at the write, long before the read",
			at.Sub(sent), read.Sub(at))
	}

	client.Close()
	if n, err := conn.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after the peer closed = %d, %v; want io.EOF", n, err)
	}
}
