package etcd

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// dialErr is what net.Dialer returns for errno e.
func dialErr(e syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", e)}
}

func TestProbePort(t *testing.T) {
	ctx := context.Background()
	waits := []time.Duration{time.Millisecond, time.Millisecond, 0}

	t.Run("a closed port is refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		var d net.Dialer
		if v, err := probePort(ctx, d.DialContext, addr, waits); v != portRefused {
			t.Errorf("verdict %d (%v), want refused", v, err)
		}
	})
	t.Run("a listening port accepts", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var d net.Dialer
		if v, err := probePort(ctx, d.DialContext, l.Addr().String(), waits); v != portAccepts {
			t.Errorf("verdict %d (%v), want accepts", v, err)
		}
	})

	// The kernel's answer while a killed process's listening socket
	// closes cannot be timed from a test: the dials are scripted.
	scripted := func(errs ...error) (func(context.Context, string, string) (net.Conn, error), *int) {
		n := new(int)
		return func(context.Context, string, string) (net.Conn, error) {
			e := errs[min(*n, len(errs)-1)]
			*n++
			if e == nil {
				c1, c2 := net.Pipe()
				c2.Close()
				return c1, nil
			}
			return nil, e
		}, n
	}
	for _, c := range []struct {
		name  string
		errs  []error
		want  portVerdict
		dials int
	}{
		{"reset, then refused: dead", []error{dialErr(syscall.ECONNRESET), dialErr(syscall.ECONNREFUSED)}, portRefused, 2},
		{"accepted, then refused: dead", []error{nil, dialErr(syscall.ECONNREFUSED)}, portRefused, 2},
		{"reset every time: unknown", []error{dialErr(syscall.ECONNRESET)}, portUnknown, 3},
		{"a timeout: unknown at once", []error{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}}, portUnknown, 1},
		{"no route: unknown at once", []error{dialErr(syscall.EHOSTUNREACH)}, portUnknown, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			dial, n := scripted(c.errs...)
			v, err := probePort(ctx, dial, "127.0.0.1:1", waits)
			if v != c.want || *n != c.dials {
				t.Errorf("verdict %d after %d dials (%v), want %d after %d", v, *n, err, c.want, c.dials)
			}
		})
	}
}
