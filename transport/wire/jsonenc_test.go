package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// seedFrame is the seed dialect's message frame as a struct, for the
// reference encoding.
type seedFrame struct {
	Message        string `json:"message"`
	SenderID       int64  `json:"sender_id"`
	SenderName     string `json:"sender_name"`
	SenderIsAdmin  bool   `json:"sender_is_admin"`
	ConversationID int64  `json:"conversation_id"`
}

// reference encodings: what encoding/json gives for the frame structs that
// the hand-written encoders replace.
func refSeed(m Message) []byte {
	return mustMarshal(seedFrame{
		Message: m.Body, SenderID: m.SenderID, SenderName: m.SenderName,
		SenderIsAdmin: m.SenderIsAdmin, ConversationID: m.ConversationID,
	})
}

func refMessage(m Message) []byte { return mustMarshal(toV1(m, TypeMessage)) }

func refAck(m Message, duplicate bool) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		ClientMsgID    string `json:"client_msg_id"`
		ID             int64  `json:"id"`
		ConversationID int64  `json:"conversation_id"`
		Seq            int64  `json:"seq"`
		CreatedAt      string `json:"created_at"`
		Duplicate      bool   `json:"duplicate"`
	}{"ack", m.ClientMsgID, m.ID, m.ConversationID, m.Seq, formatTime(m.CreatedAt), duplicate})
}

func refInboxUpdate(e InboxEntry) []byte {
	return mustMarshal(struct {
		Type         string         `json:"type"`
		Conversation inboxEntryJSON `json:"conversation"`
	}{"inbox_update", toInboxJSON(e)})
}

// checkEncoders compares every hand-written encoder with encoding/json.
func checkEncoders(t *testing.T, m Message, e InboxEntry) {
	t.Helper()
	for _, c := range []struct {
		name      string
		got, want []byte
	}{
		{"SeedMessageFrame", SeedMessageFrame(m), refSeed(m)},
		{"MessageFrame", MessageFrame(m), refMessage(m)},
		{"AckFrame", AckFrame(m, m.SenderIsAdmin), refAck(m, m.SenderIsAdmin)},
		{"InboxUpdateFrame", InboxUpdateFrame(e), refInboxUpdate(e)},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Fatalf("%s differs from encoding/json:\n got %s\nwant %s", c.name, c.got, c.want)
		}
	}
}

func sampleFor(body, name, clientID string, id int64, admin bool, micros int64) (Message, InboxEntry) {
	var created time.Time
	if micros != 0 {
		created = time.UnixMicro(micros).In(time.FixedZone("x", 3600))
	}
	m := Message{ID: id, ConversationID: id / 2, Seq: id % 1000, SenderID: -id, SenderName: name,
		SenderIsAdmin: admin, Body: body, ClientMsgID: clientID, CreatedAt: created}
	e := InboxEntry{ConversationID: id / 2, UserID: id, UserExternalID: clientID, UserName: name,
		LastSeq: id % 1000, LastMessageAt: created}
	if !admin {
		e.LastMessage = &m
		e.Team = name // "" (not shown) in some samples too
	}
	return m, e
}

func TestEncodersMatchJSON(t *testing.T) {
	texts := []string{
		"", "plain", `quote " backslash \ slash /`, "<img src=x onerror=alert(1)> & co",
		"ctl \x00\x01\x1f \b\f\n\r\t \x7f", "é 😀 \u200f\u202e rtl", "\u2028\u2029 separators",
		"bad utf8 \xff\xfe \xc3", "'; DROP TABLE messages; --", "\xed\xa0\x80 surrogate",
	}
	for i, body := range texts {
		for _, admin := range []bool{false, true} {
			name := texts[(i+1)%len(texts)]
			m, e := sampleFor(body, name, texts[(i+2)%len(texts)], int64(i*7919), admin, int64(i)*1_700_000_000_123_456/int64(len(texts)))
			checkEncoders(t, m, e)
		}
	}
}

func FuzzEncodersMatchJSON(f *testing.F) {
	f.Add("Bonjour <b>", "Marie", "id-1", int64(42), false, int64(1_700_000_000_123_456))
	f.Add("\u2028\xff\x00", "", "", int64(0), true, int64(0))
	f.Fuzz(func(t *testing.T, body, name, clientID string, id int64, admin bool, micros int64) {
		if micros < -62135596800000000 || micros > 253402300799000000 {
			return // years outside 0001–9999: not a time a message has
		}
		m, e := sampleFor(body, name, clientID, id, admin, micros)
		checkEncoders(t, m, e)
	})
}

func TestAppendTimeFormatMatchesAppendFormat(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 2, 28, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2024, 2, 29, 12, 0, 0, 1_000, time.UTC),
		time.Date(2026, 11, 26, 0, 30, 5, 123_456_789, paris),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 500, time.FixedZone("", -5*3600)),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10_000 {
		times = append(times, time.Unix(r.Int64N(300_000_000_000)-62_000_000_000, r.Int64N(1e9)))
	}
	for _, tm := range times {
		want := tm.UTC().AppendFormat([]byte("x"), TimeFormat)
		if got := appendTimeFormat([]byte("x"), tm); string(got) != string(want) {
			t.Fatalf("%v: got %s, want %s", tm, got, want)
		}
	}
}
