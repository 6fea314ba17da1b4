package wire

import (
	"encoding/json"
	"unicode/utf8"
)

// scanRequest splits the usual client frame, a flat JSON object of plain
// strings and integers, into a rawRequest without encoding/json's reflection
// and allocations (decoding took about a tenth of chatd's CPU under load).
// It reports false for anything else (escapes in strings, nested values,
// fractions, keys it does not know exactly, invalid syntax), and Decode then
// uses json.Unmarshal: where it answers, it answers as json.Unmarshal does
// (FuzzScanMatchesUnmarshal checks it).
func scanRequest(frame []byte) (rawRequest, bool) {
	var raw rawRequest
	i := skipSpace(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		return raw, false
	}
	i = skipSpace(frame, i+1)
	if i < len(frame) && frame[i] == '}' {
		return raw, skipSpace(frame, i+1) == len(frame)
	}
	for {
		key, next, ok := scanString(frame, i)
		if !ok {
			return raw, false
		}
		i = skipSpace(frame, next)
		if i >= len(frame) || frame[i] != ':' {
			return raw, false
		}
		i = skipSpace(frame, i+1)
		start := i
		isString := false
		switch {
		case i < len(frame) && frame[i] == '"':
			_, next, ok = scanString(frame, i)
			isString = true
		default:
			next, ok = scanNumberOrNull(frame, i)
		}
		if !ok {
			return raw, false
		}
		value := json.RawMessage(frame[start:next:next])
		switch string(key) {
		case "type":
			if !isString {
				return raw, false // a type error, or null: json.Unmarshal says which
			}
			raw.Type = string(value[1 : len(value)-1])
		case "message":
			raw.Message = value
		case "conversation_id":
			raw.ConversationID = value
		case "client_msg_id":
			raw.ClientMsgID = value
		case "before_seq":
			raw.BeforeSeq = value
		case "after_seq":
			raw.AfterSeq = value
		case "limit":
			raw.Limit = value
		case "based_on_seq":
			raw.BasedOnSeq = value
		case "seq":
			raw.Seq = value
		default:
			// json.Unmarshal matches keys case-insensitively: leave any
			// other key to it.
			return raw, false
		}
		i = skipSpace(frame, next)
		if i >= len(frame) {
			return raw, false
		}
		switch frame[i] {
		case ',':
			i = skipSpace(frame, i+1)
		case '}':
			return raw, skipSpace(frame, i+1) == len(frame)
		default:
			return raw, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the string at b[i] when it needs no decoding: no escape,
// no control character, valid UTF-8. It returns its contents and the index
// after its closing quote.
func scanString(b []byte, i int) (content []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	start := i + 1
	ascii := true
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			s := b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, 0, false // json.Unmarshal would replace bad bytes
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, 0, false
}

// scanNumberOrNull reads an integer (-?(0|[1-9][0-9]*)) or null at b[i].
func scanNumberOrNull(b []byte, i int) (next int, ok bool) {
	if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
		return i + 4, true
	}
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
		return 0, false // a fraction or an exponent: json.Unmarshal's business
	}
	return j, true
}
