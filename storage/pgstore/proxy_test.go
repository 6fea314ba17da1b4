package pgstore_test

import (
	"net"
	"net/url"
	"testing"

	"github.com/grainchat/grainchat/storage/pgtest"
)

// startProxy starts a cuttable proxy to target (see pgtest.Proxy).
func startProxy(t *testing.T, target string) *pgtest.Proxy { return pgtest.StartProxy(t, target) }

// closedAddr returns a loopback host:port where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// dsnAddr returns the host:port of a postgres:// URL.
func dsnAddr(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

// withHost returns dsn with its host:port replaced by addr.
func withHost(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	u.Host = addr
	return u.String()
}
