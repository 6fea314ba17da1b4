package mail

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/grainchat/grainchat/storage"
)

// This file owns what the mails say: plain text only (a visitor's or
// agent's words are never HTML), with a link back to the chat.

// visitorMessage is the mail of v's unread staff replies.
func (m *Mailer) visitorMessage(v storage.VisitorMail) *Message {
	n := len(v.Messages) + v.More
	subject := "New reply to your conversation"
	if n > 1 {
		subject = fmt.Sprintf("%d new replies to your conversation", n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n", oneLine(v.Visitor.Name))
	if n == 1 {
		b.WriteString("You have a new reply in your support conversation:\n")
	} else {
		fmt.Fprintf(&b, "You have %d new replies in your support conversation:\n", n)
	}
	for _, msg := range v.Messages {
		fmt.Fprintf(&b, "\n%s, %s:\n", oneLine(msg.SenderName), msg.CreatedAt.UTC().Format("2 Jan 2006 15:04 MST"))
		b.WriteString(quote(msg.Body))
	}
	if v.More > 0 {
		fmt.Fprintf(&b, "\n(and %d more)\n", v.More)
	}
	fmt.Fprintf(&b, "\nRead and answer them here: %s\n", m.link("/chat/"))
	b.WriteString("\n-- \nYou get this email because you were away when support answered.\n")
	return &Message{
		From:    m.cfg.From,
		To:      []string{v.Email},
		Subject: subject,
		Text:    b.String(),
		ID:      fmt.Sprintf("grainchat.reply.%d.%d@%s", v.ConversationID, v.UpTo, m.host),
		Headers: map[string]string{
			"Auto-Submitted":           "auto-generated",
			"X-Auto-Response-Suppress": "All",
			"X-Grainchat-Conversation": strconv.FormatInt(v.ConversationID, 10),
			"X-Grainchat-Seq":          strconv.FormatInt(v.UpTo, 10),
		},
	}
}

// staffMessage is the mail that tells staff (to) of v's new conversation.
func (m *Mailer) staffMessage(v storage.StaffMail, to []string) *Message {
	name := oneLine(v.Visitor.Name)
	var b strings.Builder
	who := name
	if v.Email != "" {
		who = fmt.Sprintf("%s <%s>", name, v.Email)
	}
	fmt.Fprintf(&b, "%s started a conversation while no agent was online:\n\n", who)
	b.WriteString(quote(v.First.Body))
	fmt.Fprintf(&b, "\nAnswer it here: %s\n", m.link(fmt.Sprintf("/admin/#c%d", v.ConversationID)))
	b.WriteString("\n-- \nYou get this email because no agent was online when the conversation started.\n")
	return &Message{
		From:    m.cfg.From,
		To:      to,
		Subject: "New conversation from " + name,
		Text:    b.String(),
		ID:      fmt.Sprintf("grainchat.new.%d@%s", v.ConversationID, m.host),
		Headers: map[string]string{
			"Auto-Submitted":           "auto-generated",
			"X-Auto-Response-Suppress": "All",
			"X-Grainchat-Conversation": strconv.FormatInt(v.ConversationID, 10),
		},
	}
}

// link is PublicURL joined with path.
func (m *Mailer) link(path string) string {
	return strings.TrimRight(m.cfg.PublicURL, "/") + path
}

// quote indents each line of a message's text.
func quote(body string) string {
	var b strings.Builder
	for line := range strings.Lines(strings.TrimRight(body, "\n")) {
		b.WriteString("    ")
		b.WriteString(strings.TrimRight(line, "\r\n"))
		b.WriteByte('\n')
	}
	return b.String()
}

// oneLine keeps a name on one line (no control characters).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
