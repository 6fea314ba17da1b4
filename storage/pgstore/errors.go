package pgstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"

	"github.com/grainchat/grainchat/storage"
)

// dbError turns err, returned while doing what, into a *storage.Error:
// unchanged if it already is one, EUNAVAILABLE if the database could not be
// reached or the call ran out of time (see unavailable), EINTERNAL otherwise.
// ctx is the context of the failed call. The result never contains message
// bodies: the server's message for a data exception (class 22), which may
// quote the input, is dropped; for unique and foreign key violations the
// wrapped error names the constraint and the offending key.
func dbError(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*storage.Error](err); ok {
		return se
	}
	if unavailable(ctx, err) {
		return storage.Unavailable(what, err)
	}
	if pqErr := pq.As(err); pqErr != nil {
		switch {
		case pqErr.Code == "23505", pqErr.Code == "23503": // unique_violation, foreign_key_violation
			// Their detail is the key ("Key (id)=(7) ..."), never a row.
			err = fmt.Errorf("%w: constraint %s: %s", err, pqErr.Constraint, pqErr.Detail)
		case pqErr.Code.Class() == "22":
			// A data exception's message may quote the input (a message
			// body): keep only its code.
			err = fmt.Errorf("pq: data exception (SQLSTATE %s), message withheld", pqErr.Code)
		}
	}
	return &storage.Error{Code: storage.EINTERNAL, Message: what, Err: err}
}

// unavailable reports whether err means that the database could not be
// reached or did not answer in time, so that retrying later may succeed.
func unavailable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true // whatever failed, it was cut short by the deadline or the caller
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if pqErr := pq.As(err); pqErr != nil {
		if class := string(pqErr.Code.Class()); class == "08" || class == "53" {
			return true // connection_exception, insufficient_resources (too many connections…)
		}
		switch pqErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"57014",          // query_canceled (statement_timeout, a cancel request)
			"40001", "40P01": // serialization_failure, deadlock_detected: retryable
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "sql: database is closed")
}
