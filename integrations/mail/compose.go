package mail

import (
	"context"
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

// maxTranscriptBytes bounds a transcript mail's quoted messages; later ones
// are counted, and the mail links to the chat.
const maxTranscriptBytes = 512 << 10

// transcriptMessage is the mail of v's whole conversation (its messages, as
// the visitor's page shows them), read page by page.
func (m *Mailer) transcriptMessage(ctx context.Context, v storage.TranscriptMail) (*Message, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\nHere is your support conversation, as you asked.\n", oneLine(v.Visitor.Name))
	var after, upTo int64
	omitted := 0
	for {
		page, err := m.store.Messages(ctx, v.ConversationID, storage.Page{AfterSeq: after, Limit: storage.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("transcript of conversation %d: %w", v.ConversationID, err)
		}
		for _, msg := range page {
			if b.Len() > maxTranscriptBytes {
				omitted++
				continue
			}
			who := oneLine(msg.SenderName)
			if msg.SenderIsAdmin {
				who += " (support)"
			}
			fmt.Fprintf(&b, "\n%s  %s:\n", msg.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"), who)
			b.WriteString(quote(msg.Body))
			upTo = msg.Seq
		}
		if len(page) < storage.MaxPageSize {
			break
		}
		after = page[len(page)-1].Seq
	}
	if upTo == 0 {
		b.WriteString("\n(no messages yet)\n")
	}
	if omitted > 0 {
		fmt.Fprintf(&b, "\n(%d later messages are not in this email: read them in the chat)\n", omitted)
	}
	fmt.Fprintf(&b, "\nContinue the conversation here: %s\n", m.link("/chat/"))
	b.WriteString("\n-- \nYou get this email because you asked for your conversation's transcript.\n")
	return &Message{
		From:    m.cfg.From,
		To:      []string{v.Email},
		Subject: "Your support conversation",
		Text:    b.String(),
		ID:      fmt.Sprintf("grainchat.transcript.%d.%d@%s", v.ConversationID, v.RequestedAt.UnixMicro(), m.host),
		Headers: map[string]string{
			"Auto-Submitted":           "auto-generated",
			"X-Auto-Response-Suppress": "All",
			"X-Grainchat-Conversation": strconv.FormatInt(v.ConversationID, 10),
		},
	}, nil
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
