// This file holds a conversation's transcript: the whole thread (messages
// and desk events, notes only when asked), as text or JSON, streamed page
// by page so that its size does not depend on memory.

package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grainchat/grainchat/actors"
	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// transcriptPage is how many messages one store read of a transcript takes.
const transcriptPage = storage.MaxPageSize

// streamed is an answer written by write instead of encoded as JSON: the
// status and headers go first, so an error while writing aborts the
// connection (the client sees a failed download, never a silently short
// one).
type streamed struct {
	contentType string
	filename    string
	write       func(ctx context.Context, w io.Writer) error
}

// transcript: GET /api/v1/conversations/{id}/transcript?format=text|json&notes=true|false
func (a *API) transcript(req *request) (int, any, error) {
	id, err := pathID(req.r)
	if err != nil {
		return 0, nil, err
	}
	q := req.r.URL.Query()
	format := q.Get("format")
	switch format {
	case "":
		format = "text"
	case "text", "json":
	default:
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "format must be text or json")
	}
	notes := false
	switch q.Get("notes") {
	case "", "false":
	case "true":
		notes = true
	default:
		return 0, nil, errorf(http.StatusBadRequest, wire.CodeInvalidRequest, "notes must be true or false")
	}
	conv, err := a.conversation(req, id)
	if err != nil {
		return 0, nil, err
	}
	t := &thread{store: a.cfg.Store, conv: id, notes: notes, timeout: a.cfg.Timeout}
	exported := time.Now().UTC()
	if format == "json" {
		return http.StatusOK, &streamed{contentType: "application/json; charset=utf-8",
			filename: fmt.Sprintf("conversation-%d.json", id),
			write: func(ctx context.Context, w io.Writer) error {
				return t.writeJSON(ctx, w, conv, req.user, exported)
			}}, nil
	}
	return http.StatusOK, &streamed{contentType: "text/plain; charset=utf-8",
		filename: fmt.Sprintf("conversation-%d.txt", id),
		write: func(ctx context.Context, w io.Writer) error {
			return t.writeText(ctx, w, conv, req.user, exported)
		}}, nil
}

// thread reads a conversation's thread in order: each message, then the
// events recorded after it (those recorded before the first message
// first). Notes are left out unless notes.
type thread struct {
	store   storage.Store
	conv    int64
	notes   bool
	timeout time.Duration // bounds each store read
}

// item is one entry of a thread: a message or an event.
type item struct {
	message *storage.Message
	event   *storage.Event
}

// each calls f for every item of the thread, in order.
func (t *thread) each(ctx context.Context, f func(item) error) error {
	var after int64
	for {
		msgs, events, err := t.page(ctx, after)
		if err != nil {
			return err
		}
		ev := 0
		emitEvents := func(upTo int64) error {
			for ; ev < len(events) && events[ev].AfterSeq <= upTo; ev++ {
				if events[ev].Kind == storage.EventNote && !t.notes {
					continue
				}
				if err := f(item{event: &events[ev]}); err != nil {
					return err
				}
			}
			return nil
		}
		if after == 0 {
			if err := emitEvents(0); err != nil { // before the first message
				return err
			}
		}
		for i := range msgs {
			if err := f(item{message: &msgs[i]}); err != nil {
				return err
			}
			if err := emitEvents(msgs[i].Seq); err != nil {
				return err
			}
		}
		if len(msgs) < transcriptPage { // the last page: every later event
			return emitEvents(1 << 62)
		}
		after = msgs[len(msgs)-1].Seq
	}
}

// page reads the messages after seq after and the events recorded after
// them (up to the page's last message; after the last page, every later
// event too).
func (t *thread) page(ctx context.Context, after int64) ([]storage.Message, []storage.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	msgs, err := t.store.Messages(ctx, t.conv, storage.Page{AfterSeq: after, Limit: transcriptPage})
	if err != nil {
		return nil, nil, fmt.Errorf("read messages after %d: %w", after, err)
	}
	from, to := after+1, int64(1<<62)
	if after == 0 {
		from = 0
	}
	if len(msgs) == transcriptPage {
		to = msgs[len(msgs)-1].Seq
	}
	if from > to {
		return msgs, nil, nil
	}
	events, err := t.store.Events(ctx, t.conv, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read events %d..%d: %w", from, to, err)
	}
	if len(events) >= storage.MaxEventsPage {
		return nil, nil, fmt.Errorf("more than %d events after seqs %d..%d", storage.MaxEventsPage, from, to)
	}
	return msgs, events, nil
}

// writeText writes the thread as plain text: a header, then one line per
// message or event, a message's later lines indented.
func (t *thread) writeText(ctx context.Context, w io.Writer, conv conversationJSON, by storage.User, at time.Time) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "Conversation %d with %s (%s)\n", conv.ID, conv.User.Name, conv.User.ExternalID)
	fmt.Fprintf(bw, "Exported %s by %s\n", textTime(at), by.Name)
	if t.notes {
		bw.WriteString("Includes internal notes: not for the visitor.\n")
	}
	bw.WriteString("\n")
	err := t.each(ctx, func(it item) error {
		if m := it.message; m != nil {
			name := m.SenderName
			if m.SenderIsAdmin {
				name += " (staff)"
			}
			fmt.Fprintf(bw, "%s  %s: %s\n", textTime(m.CreatedAt), name, indent(m.Body))
		} else {
			fmt.Fprintf(bw, "%s  %s\n", textTime(it.event.CreatedAt), eventText(it.event))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// textTime is a transcript line's time, in UTC to the second.
func textTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// indent puts a message's later lines under its first.
func indent(body string) string { return strings.ReplaceAll(body, "\n", "\n    ") }

// eventText is an event's line.
func eventText(e *storage.Event) string {
	switch e.Kind {
	case storage.EventStatus:
		return fmt.Sprintf("— %s set the status to %s", e.Actor.Name, e.Status)
	case storage.EventAssignee:
		if e.Assignee == nil {
			return fmt.Sprintf("— %s unassigned the conversation", e.Actor.Name)
		}
		return fmt.Sprintf("— %s assigned the conversation to %s", e.Actor.Name, e.Assignee.Name)
	case storage.EventNote:
		return fmt.Sprintf("[internal note] %s: %s", e.Actor.Name, indent(e.Body))
	}
	return "— " + e.Kind
}

// transcriptItem is one entry of a JSON transcript's thread: exactly one of
// message and event.
type transcriptItem struct {
	Message *messageJSON    `json:"message,omitempty"`
	Event   *wire.EventJSON `json:"event,omitempty"`
}

// writeJSON writes the thread as {"conversation", "exported_at",
// "exported_by", "notes", "thread": [{"message"} or {"event"}…]}, one item
// at a time.
func (t *thread) writeJSON(ctx context.Context, w io.Writer, conv conversationJSON, by storage.User, at time.Time) error {
	bw := bufio.NewWriter(w)
	head, err := json.Marshal(map[string]any{
		"conversation": conv,
		"exported_at":  at.Format(time.RFC3339Nano),
		"exported_by":  wire.DeskUser{ID: by.ID, ExternalID: by.ExternalID, Name: by.Name},
		"notes":        t.notes,
	})
	if err != nil {
		return err
	}
	bw.Write(head[:len(head)-1]) // without its closing brace
	bw.WriteString(`,"thread":[`)
	first := true
	err = t.each(ctx, func(it item) error {
		var entry transcriptItem
		if m := it.message; m != nil {
			mj := toMessageJSON(*m)
			entry.Message = &mj
		} else {
			ej := actors.StorageEventToWire(*it.event).ToJSON()
			entry.Event = &ej
		}
		b, err := json.Marshal(entry)
		if err != nil {
			return err
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}
