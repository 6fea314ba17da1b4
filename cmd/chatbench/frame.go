package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Decoding every received frame with encoding/json took about half of
// chatbench's CPU, and chatbench shares the machine with the server it
// measures. Nearly all frames are message and ack frames: flat JSON objects
// of strings, integers and booleans. scanFrame reads those by hand, without
// reflection and without allocating (decodeFrame then allocates only the
// client_msg_id, and an error's code); decodeFrame falls back to
// json.Unmarshal for everything else (welcome and inbox frames, nested
// values, anything unusual), so handle sees the same frame either way
// (FuzzFastFrameMatchesUnmarshal checks it).

// jsonFrame is json.Unmarshal's view of a server frame: frame's fields plus
// the message text, which handle only reads for its send time.
type jsonFrame struct {
	frame
	Message string `json:"message"`
}

// decodeFrame reads one server frame: with scanFrame when it can, with
// json.Unmarshal otherwise.
func decodeFrame(data []byte) (frame, error) {
	if ff, ok := scanFrame(data); ok {
		return ff.frame(), nil
	}
	var j jsonFrame
	if err := json.Unmarshal(data, &j); err != nil {
		return frame{}, err
	}
	f := j.frame
	f.sentAt, f.timed = parseSentAt(j.Message)
	return f, nil
}

// flatFrame is what scanFrame reads of a server frame. Absent fields are
// zero, as json.Unmarshal leaves them.
type flatFrame struct {
	typ, code, clientMsgID, message jsonString
	conversationID, seq             int64
	senderIsAdmin, duplicate        bool
}

// jsonString is a JSON string value as it is in the frame: its bytes between
// the quotes, escapes undecoded. scanFrame has checked that it is valid UTF-8
// and that its escapes decode (a \u surrogate only as half of a pair).
type jsonString struct {
	raw     []byte
	escaped bool // raw holds at least one backslash escape
}

// String returns the string's text, its escapes decoded.
func (s jsonString) String() string {
	if !s.escaped {
		return string(s.raw)
	}
	return string(appendUnescaped(nil, s.raw))
}

// frame converts f to what handle reads. It allocates only the non-empty
// code and client_msg_id strings (and the type, when unusual): the message
// text is reduced to its send time without becoming a string.
func (f *flatFrame) frame() frame {
	out := frame{
		Code:           f.code.String(),
		ConversationID: f.conversationID,
		Seq:            f.seq,
		SenderIsAdmin:  f.senderIsAdmin,
		ClientMsgID:    f.clientMsgID.String(),
		Duplicate:      f.duplicate,
	}
	if f.typ.escaped {
		out.Type = internType(appendUnescaped(nil, f.typ.raw))
	} else {
		out.Type = internType(f.typ.raw)
	}
	if f.message.escaped {
		var buf [128]byte
		out.sentAt, out.timed = sentAtOf(appendUnescaped(buf[:0], f.message.raw))
	} else {
		out.sentAt, out.timed = sentAtOf(f.message.raw)
	}
	return out
}

// internType returns the frame type b, without allocating for the types
// chatbench handles.
func internType(b []byte) string {
	switch string(b) {
	case "message":
		return "message"
	case "ack":
		return "ack"
	case "error":
		return "error"
	case "welcome":
		return "welcome"
	case "inbox":
		return "inbox"
	case "inbox_update":
		return "inbox_update"
	case "opened":
		return "opened"
	case "typing":
		return "typing"
	}
	return string(b)
}

// scanFrame reads data when it is a flat JSON object whose fields frame
// knows have the types frame gives them. It reports false, and decodeFrame
// then uses json.Unmarshal, for anything it does not fully understand:
// invalid JSON, nested objects or arrays, null, fractions, integers out of
// range, last_seq and conversations (welcome and inbox fields), keys that
// json.Unmarshal might match case-insensitively (upper case, non-ASCII,
// escapes), and strings of frame's fields that hold invalid UTF-8 or lone
// surrogates (json.Unmarshal replaces those). Where it answers, json.Unmarshal
// succeeds with the same fields.
func scanFrame(data []byte) (flatFrame, bool) {
	var f flatFrame
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return f, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return f, skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := scanString(data, i, false)
		if !ok {
			return f, false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return f, false
		}
		i = skipSpace(data, i+1)
		switch string(key.raw) {
		case "type":
			f.typ, i, ok = scanString(data, i, true)
		case "code":
			f.code, i, ok = scanString(data, i, true)
		case "client_msg_id":
			f.clientMsgID, i, ok = scanString(data, i, true)
		case "message":
			f.message, i, ok = scanString(data, i, true)
		case "conversation_id":
			f.conversationID, i, ok = scanInt(data, i)
		case "seq":
			f.seq, i, ok = scanInt(data, i)
		case "sender_is_admin":
			f.senderIsAdmin, i, ok = scanBool(data, i)
		case "duplicate":
			f.duplicate, i, ok = scanBool(data, i)
		case "last_seq", "conversations":
			return f, false // welcome and inbox frames: json.Unmarshal's
		default:
			if key.escaped || !plainKey(key.raw) {
				return f, false // json.Unmarshal might match it to a field
			}
			i, ok = skipScalar(data, i)
		}
		if !ok {
			return f, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return f, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return f, skipSpace(data, i+1) == len(data)
		default:
			return f, false
		}
	}
}

// plainKey reports whether key is ASCII without upper case letters: json.Unmarshal then matches it to a field of frame only when it
// equals the field's name.
func plainKey(key []byte) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf || (c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the JSON string at b[i] and returns it and the index
// after its closing quote. It checks the string's syntax; when strict, also
// that its text is valid UTF-8 and its \u escapes pair their surrogates, so
// that appendUnescaped decodes it as json.Unmarshal does.
func scanString(b []byte, i int, strict bool) (jsonString, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return jsonString{}, 0, false
	}
	start := i + 1
	escaped, ascii := false, true
	for j := start; j < len(b); {
		// Eight bytes at a time up to the next byte to look at.
		for j+8 <= len(b) {
			if m := specialBytes(binary.LittleEndian.Uint64(b[j:])); m != 0 {
				j += bits.TrailingZeros64(m) / 8
				break
			}
			j += 8
		}
		if j >= len(b) {
			break
		}
		c := b[j]
		switch {
		case c == '"':
			s := b[start:j]
			if strict && !ascii && !utf8.Valid(s) {
				return jsonString{}, 0, false
			}
			return jsonString{raw: s, escaped: escaped}, j + 1, true
		case c < 0x20:
			return jsonString{}, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
			j++
		case c != '\\':
			j++
		default:
			n := escapeLen(b[j:], strict)
			if n == 0 {
				return jsonString{}, 0, false
			}
			escaped = true
			j += n
		}
	}
	return jsonString{}, 0, false
}

// specialBytes marks, by the high bit of its byte, the first of the eight
// bytes of x (read little-endian) that scanString must look at: a quote, a
// backslash, a control character or a byte of a multi-byte UTF-8 sequence.
// It is 0 when there is none. (A byte that matches makes the subtractions
// borrow from the bytes after it, which may then be marked too; the first
// mark is exact.)
func specialBytes(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	control := (x - ones*0x20) & ^x
	return (x | (quote-ones)&^quote | (backslash-ones)&^backslash | control) & highs
}

// escapeLen returns the length of the escape sequence b starts with (at its
// backslash), or 0 when it is invalid; when strict, a \u surrogate counts only
// as the first half of a pair, and the length is then the pair's.
func escapeLen(b []byte, strict bool) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
	default:
		return 0
	}
	r, ok := hex4(b[2:])
	if !ok {
		return 0
	}
	if !strict || !utf16.IsSurrogate(r) {
		return 6
	}
	if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
		return 0
	}
	r2, ok := hex4(b[8:])
	if !ok || utf16.DecodeRune(r, r2) == utf8.RuneError {
		return 0
	}
	return 12
}

// hex4 reads the four hexadecimal digits b starts with.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// appendUnescaped appends the text of raw, the contents of a JSON string
// that scanString accepted strictly, with its escapes decoded.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		j := bytes.IndexByte(raw[i:], '\\')
		if j < 0 {
			return append(dst, raw[i:]...)
		}
		dst = append(dst, raw[i:i+j]...)
		i += j
		switch c := raw[i+1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			if utf16.IsSurrogate(r) {
				r2, _ := hex4(raw[i+8:])
				dst = utf8.AppendRune(dst, utf16.DecodeRune(r, r2))
				i += 12
				continue
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		i += 2
	}
	return dst
}

// scanInt reads the JSON integer at b[i], as json.Unmarshal reads one into
// an int64: no fraction, no exponent, within range.
func scanInt(b []byte, i int) (int64, int, bool) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if n > (math.MaxUint64-9)/10 {
			return 0, 0, false
		}
		n = n*10 + uint64(b[i]-'0')
		i++
	}
	switch {
	case i == start, b[start] == '0' && i-start > 1:
		return 0, 0, false // no digits, or a leading zero
	case i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E'):
		return 0, 0, false // not an integer: json.Unmarshal refuses it
	case neg && n <= 1<<63:
		return -int64(n), i, true // -(1<<63) wraps to itself, as it should
	case !neg && n <= math.MaxInt64:
		return int64(n), i, true
	}
	return 0, 0, false
}

// scanBool reads the JSON true or false at b[i].
func scanBool(b []byte, i int) (bool, int, bool) {
	switch {
	case bytes.HasPrefix(b[i:], []byte("true")):
		return true, i + 4, true
	case bytes.HasPrefix(b[i:], []byte("false")):
		return false, i + 5, true
	}
	return false, 0, false
}

// skipScalar skips the JSON string, number, true, false or null at b[i] and
// returns the index after it; objects and arrays it leaves to json.Unmarshal.
func skipScalar(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		_, next, ok := scanString(b, i, false)
		return next, ok
	case 't', 'f':
		_, next, ok := scanBool(b, i)
		return next, ok
	case 'n':
		if bytes.HasPrefix(b[i:], []byte("null")) {
			return i + 4, true
		}
		return 0, false
	}
	return skipNumber(b, i)
}

// skipNumber skips the JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// skipDigits returns the index of the first byte at or after i that is not
// a decimal digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// sentAtMarker precedes the send time at the end of a message body.
const sentAtMarker = " t="

// sentAtOf is parseSentAt for a body given as bytes, without allocating.
func sentAtOf(b []byte) (time.Time, bool) {
	i := len(b) - len(sentAtMarker)
	for i >= 0 && string(b[i:i+len(sentAtMarker)]) != sentAtMarker {
		i--
	}
	if i < 0 {
		return time.Time{}, false
	}
	n, ok := parseInt64(b[i+len(sentAtMarker):])
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// parseInt64 parses b as strconv.ParseInt(string(b), 10, 64) does, reporting
// false where it returns an error.
func parseInt64(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' || n > (math.MaxUint64-9)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), true
	case !neg && n <= math.MaxInt64:
		return int64(n), true
	}
	return 0, false
}
