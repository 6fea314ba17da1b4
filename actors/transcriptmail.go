// This file holds a visitor's request for their transcript by email: the
// session records it in the store (storage.Mail), and the node sending the
// cluster's mails (integrations/mail) sends it.

package actors

import (
	"context"

	"github.com/grainchat/grainchat/storage"
	"github.com/grainchat/grainchat/transport/wire"
)

// canEmailTranscript reports whether this session's visitor may ask for
// their transcript by email.
func (s *session) canEmailTranscript() bool {
	_, ok := s.node.store.(storage.Mail)
	return ok && s.node.cfg.TranscriptEmail && !s.cfg.User.IsAdmin && s.cfg.User.Email != ""
}

// transcriptEmail records the visitor's request and answers it.
func (s *session) transcriptEmail() {
	if s.cfg.User.IsAdmin {
		s.fail(&wire.Error{Code: wire.CodeForbidden, Message: "staff download transcripts (GET /api/v1/conversations/{id}/transcript)"})
		return
	}
	if !s.canEmailTranscript() {
		s.fail(&wire.Error{Code: wire.CodeEmailUnavailable, Message: "email is not available: the server sends none, or your sign-in carries no email address",
			ConversationID: s.cfg.ConversationID})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.node.cfg.StoreTimeout)
	defer cancel()
	r, err := s.node.store.(storage.Mail).RequestTranscriptMail(ctx, s.cfg.ConversationID)
	if err != nil {
		code := codeFromStorage(err)
		s.fail(&wire.Error{Code: code, Message: messageForCode(code), ConversationID: s.cfg.ConversationID})
		return
	}
	s.node.logger.Info("transcript email requested", "conversation_id", s.cfg.ConversationID, "queued", r.Queued)
	if s.cfg.V1 {
		s.write(wire.TranscriptEmailFrame(r.Queued, r.NextAllowedAt))
	}
}
