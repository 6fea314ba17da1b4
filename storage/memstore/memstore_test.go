package memstore_test

import (
	"testing"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/storage/memstore"
	"github.com/grainchat/grainchat/storage/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s := memstore.New(memstore.Options{})
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestClose(t *testing.T) {
	s := memstore.New(memstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if code := storage.ErrorCode(s.Ping(t.Context())); code != storage.EUNAVAILABLE {
		t.Fatalf("Ping after Close: code %q, want %q", code, storage.EUNAVAILABLE)
	}
	_, err := s.AppendMessages(t.Context(), []storage.NewMessage{{ConversationID: 1, SenderID: 1, Body: "x"}})
	if code := storage.ErrorCode(err); code != storage.EUNAVAILABLE {
		t.Fatalf("AppendMessages after Close: code %q, want %q", code, storage.EUNAVAILABLE)
	}
}
