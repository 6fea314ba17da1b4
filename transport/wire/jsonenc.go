package wire

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The frames sent for every message (message, ack, inbox_update, the seed
// frame) are encoded by hand: encoding/json's reflection and buffers took
// about a tenth of chatd's CPU under load. The output is byte for byte what
// encoding/json gives for the same structs (FuzzEncodersMatchJSON checks it),
// so clients see no difference.

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes encoding/json copies as they are, with HTML
// escaping on: printable, and not ", \, <, > or &.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = true
	}
	for _, b := range []byte{'"', '\\', '<', '>', '&'} {
		t[b] = false
	}
	return t
}()

// appendString appends s as encoding/json encodes a string: HTML-safe, with
// U+2028 and U+2029 escaped and invalid UTF-8 replaced by U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendTime appends t as a JSON string in TimeFormat ("" for the zero time).
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	if !t.IsZero() {
		dst = appendTimeFormat(dst, t)
	}
	return append(dst, '"')
}

// appendTimeFormat appends t.UTC().AppendFormat(dst, TimeFormat) without
// the general formatter's work (a few times per message).
func appendTimeFormat(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond()/1000, 6)
	return append(dst, 'Z')
}

// appendDigits appends v (0 ≤ v < 10^width) as exactly width decimal digits.
func appendDigits(dst []byte, v, width int) []byte {
	n := len(dst) + width
	dst = append(dst, make([]byte, width)...)
	for i := n - 1; i >= n-width; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

func appendBool(dst []byte, v bool) []byte { return strconv.AppendBool(dst, v) }

func appendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// appendV1Message appends m as the v1Message struct encodes (type omitted
// when empty).
func appendV1Message(b []byte, m Message, typ string) []byte {
	b = append(b, '{')
	if typ != "" {
		b = append(b, `"type":`...)
		b = appendString(b, typ)
		b = append(b, ',')
	}
	b = append(b, `"id":`...)
	b = appendInt(b, m.ID)
	b = append(b, `,"conversation_id":`...)
	b = appendInt(b, m.ConversationID)
	b = append(b, `,"seq":`...)
	b = appendInt(b, m.Seq)
	b = append(b, `,"message":`...)
	b = appendString(b, m.Body)
	b = append(b, `,"sender_id":`...)
	b = appendInt(b, m.SenderID)
	b = append(b, `,"sender_name":`...)
	b = appendString(b, m.SenderName)
	b = append(b, `,"sender_is_admin":`...)
	b = appendBool(b, m.SenderIsAdmin)
	b = append(b, `,"created_at":`...)
	b = appendTime(b, m.CreatedAt)
	b = append(b, `,"client_msg_id":`...)
	b = appendString(b, m.ClientMsgID)
	return append(b, '}')
}

// appendInboxEntry appends e as inboxEntryJSON encodes.
func appendInboxEntry(b []byte, e InboxEntry) []byte {
	b = append(b, `{"conversation_id":`...)
	b = appendInt(b, e.ConversationID)
	b = append(b, `,"user":{"id":`...)
	b = appendInt(b, e.UserID)
	b = append(b, `,"external_id":`...)
	b = appendString(b, e.UserExternalID)
	b = append(b, `,"name":`...)
	b = appendString(b, e.UserName)
	b = append(b, `},"last_seq":`...)
	b = appendInt(b, e.LastSeq)
	b = append(b, `,"last_message_at":`...)
	b = appendTime(b, e.LastMessageAt)
	b = append(b, `,"last_message":`...)
	if e.LastMessage == nil {
		b = append(b, "null"...)
	} else {
		b = appendV1Message(b, *e.LastMessage, "")
	}
	if e.Status != "" {
		b = append(b, `,"status":`...)
		b = appendString(b, e.Status)
	}
	b = append(b, `,"assignee":`...)
	if e.Assignee == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"id":`...)
		b = appendInt(b, e.Assignee.ID)
		b = append(b, `,"external_id":`...)
		b = appendString(b, e.Assignee.ExternalID)
		b = append(b, `,"name":`...)
		b = appendString(b, e.Assignee.Name)
		b = append(b, '}')
	}
	if e.Team != "" {
		b = append(b, `,"team":`...)
		b = appendString(b, e.Team)
	}
	if e.HasReadState {
		b = append(b, `,"read_seq":`...)
		b = appendInt(b, e.ReadSeq)
		b = append(b, `,"unread":`...)
		b = appendInt(b, e.Unread)
	}
	return append(b, '}')
}

// frameSize is a first guess of a frame's size: the fixed keys plus the
// variable texts.
func frameSize(texts ...string) int {
	n := 256
	for _, t := range texts {
		n += len(t) + len(t)/8
	}
	return n
}
