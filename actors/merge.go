// This file holds the merge of an anonymous visitor's conversation into the
// conversation of the signed-in user they turned out to be (chatd
// --anonymous-visitors): the anonymous user is marked merged first (it can no
// longer connect), then its messages are posted again, in order, into the
// user's conversation through its grain (so they are stored, delivered live
// and sent to webhooks like any other), each under a server-made client
// message id that makes a repeated merge store nothing twice; then the
// anonymous conversation is resolved.

package actors

import (
	"context"
	"fmt"

	"github.com/grainchat/grainchat/storage"
)

// MergeResult is what MergeAnonymous did.
type MergeResult struct {
	// ConversationID is the signed-in user's conversation.
	ConversationID int64
	// Merged counts the messages copied by this call (a repeated merge
	// copies only what an interrupted one did not).
	Merged int
}

// mergeClientMsgID is the client message id of message id's copy.
func mergeClientMsgID(id int64) string { return fmt.Sprintf("~merge:%d", id) }

// MergeAnonymous merges anonymous user anon's conversation into user into's
// (a visitor, not staff). Errors are the store's (ECONFLICT: anon was merged
// into someone else) or *ErrDesk.
func (n *Node) MergeAnonymous(ctx context.Context, anon, into storage.User) (MergeResult, error) {
	if into.IsAdmin || anon.IsAdmin {
		return MergeResult{}, storage.Errorf(storage.EINVALID, "only visitors' conversations are merged")
	}
	from, err := n.store.EnsureConversation(ctx, anon.ID)
	if err != nil {
		return MergeResult{}, err
	}
	to, err := n.store.EnsureConversation(ctx, into.ID)
	if err != nil {
		return MergeResult{}, err
	}
	if err := n.store.MergeUser(ctx, anon.ID, into.ID); err != nil {
		return MergeResult{}, err
	}
	res := MergeResult{ConversationID: to.ID}
	var after int64
	seen := false
	for {
		page, err := n.store.Messages(ctx, from.ID, storage.Page{AfterSeq: after, Limit: storage.MaxPageSize})
		if err != nil {
			return res, err
		}
		for _, m := range page {
			seen = true
			sender := storage.User{ID: m.SenderID, Name: m.SenderName, IsAdmin: m.SenderIsAdmin}
			if m.SenderID == anon.ID {
				sender = into
			}
			_, dup, err := n.Post(ctx, to.ID, PostInput{Sender: sender, Body: m.Body, ClientMsgID: mergeClientMsgID(m.ID)})
			if err != nil {
				return res, err
			}
			if !dup {
				res.Merged++
			}
		}
		if len(page) < storage.MaxPageSize {
			break
		}
		after = page[len(page)-1].Seq
	}
	if seen {
		resolved := storage.StatusResolved
		if _, err := n.Change(ctx, from.ID, storage.Change{Status: &resolved, ActorID: into.ID}); err != nil {
			return res, err
		}
	}
	n.logger.Info("anonymous conversation merged", "from_conversation_id", from.ID, "conversation_id", to.ID, "messages", res.Merged)
	return res, nil
}
