package pgstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

func TestDBError(t *testing.T) {
	pqErr := func(code string) error {
		//lint:ignore SA1019 pq.Error's Code field still has the type pq.ErrorCode
		return &pq.Error{Severity: "ERROR", Code: pq.ErrorCode(code), Message: "m"}
	}
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"storage error kept", storage.Errorf(storage.ENOTFOUND, "x"), storage.ENOTFOUND},
		{"deadline", context.DeadlineExceeded, storage.EUNAVAILABLE},
		{"canceled", fmt.Errorf("query: %w", context.Canceled), storage.EUNAVAILABLE},
		{"bad conn", driver.ErrBadConn, storage.EUNAVAILABLE},
		{"EOF", io.EOF, storage.EUNAVAILABLE},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), storage.EUNAVAILABLE},
		{"net error", opErr, storage.EUNAVAILABLE},
		{"connection reset", fmt.Errorf("x: %w", syscall.ECONNRESET), storage.EUNAVAILABLE},
		{"refused as text", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), storage.EUNAVAILABLE},
		{"08006 connection_failure", pqErr("08006"), storage.EUNAVAILABLE},
		{"57P01 admin_shutdown", pqErr("57P01"), storage.EUNAVAILABLE},
		{"57P03 cannot_connect_now", pqErr("57P03"), storage.EUNAVAILABLE},
		{"53300 too_many_connections", pqErr("53300"), storage.EUNAVAILABLE},
		{"57014 query_canceled", pqErr("57014"), storage.EUNAVAILABLE},
		{"40P01 deadlock", pqErr("40P01"), storage.EUNAVAILABLE},
		{"23505 unique", pqErr("23505"), storage.EINTERNAL},
		{"42601 syntax", pqErr("42601"), storage.EINTERNAL},
		{"other", errors.New("boom"), storage.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dbError(context.Background(), "doing x", tt.err)
			if _, ok := errors.AsType[*storage.Error](err); !ok {
				t.Fatalf("dbError returned %T, want *storage.Error", err)
			}
			if got := storage.ErrorCode(err); got != tt.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tt.want, err)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("%v does not wrap %v", err, tt.err)
			}
		})
	}

	t.Run("context done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got := storage.ErrorCode(dbError(ctx, "x", errors.New("sql: transaction has already been committed or rolled back"))); got != storage.EUNAVAILABLE {
			t.Fatalf("code = %q, want %q", got, storage.EUNAVAILABLE)
		}
	})
	t.Run("nil", func(t *testing.T) {
		if err := dbError(context.Background(), "x", nil); err != nil {
			t.Fatalf("dbError(nil) = %v", err)
		}
	})
	t.Run("data exception withheld", func(t *testing.T) {
		err := dbError(context.Background(), "insert", &pq.Error{Code: "22P02", Message: `malformed array literal: "{secret body}"`})
		if storage.ErrorCode(err) != storage.EINTERNAL || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "22P02") {
			t.Fatalf("error %q: want internal, with the code and without the server's message", err)
		}
	})
	t.Run("constraint detail", func(t *testing.T) {
		err := dbError(context.Background(), "insert", &pq.Error{Code: "23505", Message: "duplicate key",
			Constraint: "messages_conversation_id_seq_key", Detail: "Key (conversation_id, seq)=(1, 1) already exists."})
		if !strings.Contains(err.Error(), "messages_conversation_id_seq_key") || !strings.Contains(err.Error(), "(1, 1)") {
			t.Fatalf("error %q lacks the constraint and key", err)
		}
	})
}
