package rules

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/grainchat/grainchat/storage"
)

func TestTruncateUTF8(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"aé", 2, "a"},  // é is 2 bytes
		{"aé", 3, "aé"}, // fits exactly
		{"😀", 3, ""},
		{"a😀b", 5, "a😀"},
		{"a😀b", 4, "a"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		got := TruncateUTF8(tt.s, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("TruncateUTF8(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestPage(t *testing.T) {
	tests := []struct {
		in   storage.Page
		want Bounds
	}{
		{storage.Page{}, Bounds{Limit: storage.DefaultPageSize}},
		{storage.Page{Limit: storage.MaxPageSize + 1}, Bounds{Limit: storage.MaxPageSize}},
		{storage.Page{BeforeSeq: 9, Limit: 3}, Bounds{BeforeSeq: 9, Limit: 3, Newest: true}},
		{storage.Page{AfterSeq: 2, BeforeSeq: 9, Limit: 3}, Bounds{AfterSeq: 2, BeforeSeq: 9, Limit: 3}},
	}
	for _, tt := range tests {
		got, err := Page(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Page(%+v) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, p := range []storage.Page{{Limit: -1}, {AfterSeq: -1}, {BeforeSeq: -1}} {
		if _, err := Page(p); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("Page(%+v) error = %v, want EINVALID", p, err)
		}
	}
}

func TestNewMessageNormalizesSenderName(t *testing.T) {
	m, err := NewMessage(storage.NewMessage{Body: "x", SenderName: strings.Repeat("é", storage.MaxNameBytes)})
	if err != nil {
		t.Fatalf("NewMessage: %v", err)
	}
	if len(m.SenderName) != storage.MaxNameBytes || !utf8.ValidString(m.SenderName) {
		t.Fatalf("sender name has %d bytes, valid %v", len(m.SenderName), utf8.ValidString(m.SenderName))
	}
}

func TestInboxLimit(t *testing.T) {
	for in, want := range map[int]int{-1: storage.MaxInboxSize, 0: storage.MaxInboxSize, 1: 1,
		storage.MaxInboxSize: storage.MaxInboxSize, storage.MaxInboxSize + 1: storage.MaxInboxSize} {
		if got := InboxLimit(in); got != want {
			t.Errorf("InboxLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestInboxPageLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{
		{0, storage.DefaultInboxPage},
		{1, 1},
		{storage.MaxInboxPage, storage.MaxInboxPage},
		{storage.MaxInboxPage + 1, storage.MaxInboxPage},
	} {
		if got, err := InboxPageLimit(tt.in); got != tt.want || err != nil {
			t.Errorf("InboxPageLimit(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	if _, err := InboxPageLimit(-1); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("InboxPageLimit(-1): %v, want EINVALID", err)
	}
}

func TestStaffLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{
		{0, storage.MaxStaffUsers},
		{1, 1},
		{storage.MaxStaffUsers, storage.MaxStaffUsers},
		{storage.MaxStaffUsers + 1, storage.MaxStaffUsers},
	} {
		if got, err := StaffLimit(tt.in); got != tt.want || err != nil {
			t.Errorf("StaffLimit(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	if _, err := StaffLimit(-1); storage.ErrorCode(err) != storage.EINVALID {
		t.Errorf("StaffLimit(-1): %v, want EINVALID", err)
	}
}

func TestInboxCursor(t *testing.T) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 123456000, time.UTC)
	for _, c := range []storage.InboxCursor{
		{},
		{LastMessageAt: at, ConversationID: 1},
		{LastMessageAt: at.In(time.FixedZone("x", 3600)), ConversationID: 1 << 62},
		{LastMessageAt: time.Date(1, 1, 1, 0, 0, 0, 1000, time.UTC), ConversationID: 1},
	} {
		if err := InboxCursor(c); err != nil {
			t.Errorf("InboxCursor(%+v): %v", c, err)
		}
	}
	for _, c := range []storage.InboxCursor{
		{ConversationID: 1},
		{LastMessageAt: at},
		{LastMessageAt: at, ConversationID: -1},
		{LastMessageAt: at.Add(1), ConversationID: 1},
		{LastMessageAt: at.Add(999), ConversationID: 1},
		{LastMessageAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), ConversationID: 1},
		{LastMessageAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), ConversationID: 1},
	} {
		if err := InboxCursor(c); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("InboxCursor(%+v): %v, want EINVALID", c, err)
		}
	}
}

func TestUserExternalID(t *testing.T) {
	for _, id := range []string{"ann", "x-apikey:crm", "apikey", "api key:crm"} {
		if err := UserExternalID(id); err != nil {
			t.Errorf("UserExternalID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"apikey:crm", "APIKEY:crm", "ApiKey:", "", "a\x00"} {
		if err := UserExternalID(id); storage.ErrorCode(err) != storage.EINVALID {
			t.Errorf("UserExternalID(%q) = %v, want %s", id, err, storage.EINVALID)
		}
	}
}
