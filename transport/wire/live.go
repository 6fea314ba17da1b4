// This file holds the live signals' frames (grainchat.v1 only; seed-dialect
// clients never see them): typing, and the staff who have a conversation
// open (viewers). They are relayed, never stored.

package wire

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
