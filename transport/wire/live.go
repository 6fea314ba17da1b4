// This file holds the live signals' frames (grainchat.v1 only; seed-dialect
// clients never see them): typing, and the staff who have a conversation
// open (viewers). They are relayed, never stored.

package wire

import (
	"encoding/json"
	"time"
)

// Live-signal frame types.
const (
	// TypeTyping is a client saying it is typing in a conversation, and the
	// server relaying that to the conversation's other people.
	TypeTyping = "typing"
	// TypeViewers lists the staff who have a conversation open.
	TypeViewers = "viewers"
)

// SupportName is the name a visitor sees for staff who type, unless the
// operator shows staff names.
const SupportName = "Support"

// TypingFrame tells a conversation's other people that user is typing in it.
func TypingFrame(conversationID int64, user User) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		User           User   `json:"user"`
	}{TypeTyping, conversationID, user})
}

// Viewer is one staff user who has a conversation open.
type Viewer struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// ViewersFrame lists the staff who have a conversation open (the receiver
// included), in the order they opened it.
func ViewersFrame(conversationID int64, staff []Viewer) []byte {
	if staff == nil {
		staff = []Viewer{}
	}
	return mustMarshal(struct {
		Type           string   `json:"type"`
		ConversationID int64    `json:"conversation_id"`
		Staff          []Viewer `json:"staff"`
	}{TypeViewers, conversationID, staff})
}

// Who a read receipt is from.
const (
	ReadByStaff   = "staff"
	ReadByVisitor = "visitor"
)

// ReceiptFrame tells one side of a conversation how far the other side has
// read it: by is ReadByStaff (sent to the visitor) or ReadByVisitor (sent to
// staff). It shares the read type with the staff's own read mark frame
// (ReadFrame), which carries read_seq and no by.
func ReceiptFrame(conversationID, seq int64, by string) []byte {
	return mustMarshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		Seq            int64  `json:"seq"`
		By             string `json:"by"`
	}{TypeRead, conversationID, seq, by})
}

// Presence and availability frame types; TypeAway is also the staff's
// request to set themselves away or back.
const (
	TypePresence     = "presence"
	TypeAvailability = "availability"
	TypeAway         = "away"
)

// VisitorPresence is whether a conversation's visitor is connected, and when
// they were last (zero: not known, or online).
type VisitorPresence struct {
	Online   bool
	LastSeen time.Time
}

type visitorPresenceJSON struct {
	Online   bool   `json:"online"`
	LastSeen string `json:"last_seen_at,omitempty"`
}

func (v VisitorPresence) toJSON() visitorPresenceJSON {
	out := visitorPresenceJSON{Online: v.Online}
	if !v.Online {
		out.LastSeen = optTime(v.LastSeen)
	}
	return out
}

// MarshalJSON encodes v as {"online", "last_seen_at"} (the time only when
// offline and known).
func (v VisitorPresence) MarshalJSON() ([]byte, error) { return json.Marshal(v.toJSON()) }

// PresenceFrame tells staff that conversationID's visitor came or left.
func PresenceFrame(conversationID int64, v VisitorPresence) []byte {
	j := v.toJSON()
	return mustMarshal(struct {
		Type           string `json:"type"`
		ConversationID int64  `json:"conversation_id"`
		Online         bool   `json:"online"`
		LastSeen       string `json:"last_seen_at,omitempty"`
	}{TypePresence, conversationID, j.Online, j.LastSeen})
}

// AvailabilityFrame tells a visitor whether staff are available; message is
// the operator's away message (sent only when they are not).
func AvailabilityFrame(staffOnline bool, message string) []byte {
	if staffOnline {
		message = ""
	}
	return mustMarshal(struct {
		Type        string `json:"type"`
		StaffOnline bool   `json:"staff_online"`
		Message     string `json:"message,omitempty"`
	}{TypeAvailability, staffOnline, message})
}

// AwayFrame answers a staff client's away request.
func AwayFrame(away bool) []byte {
	return mustMarshal(struct {
		Type string `json:"type"`
		Away bool   `json:"away"`
	}{TypeAway, away})
}
