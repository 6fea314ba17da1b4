package wire

import "time"

// This file holds the visitor's request for their transcript by email
// (docs/EMAIL.md): {"type":"transcript_email"}, answered with a
// transcript_email frame, or an error with CodeEmailUnavailable.

// TypeTranscriptEmail is the request and its answer.
const TypeTranscriptEmail = "transcript_email"

// CodeEmailUnavailable refuses a transcript_email: email is not configured
// on the server, or the visitor's token carried no email.
const CodeEmailUnavailable = "email_unavailable"

// TranscriptEmailFrame answers a transcript_email request: queued (a mail
// will be sent), or not, because one was sent recently: a new request may be
// made at nextAllowedAt.
func TranscriptEmailFrame(queued bool, nextAllowedAt time.Time) []byte {
	return mustMarshal(struct {
		Type          string `json:"type"`
		Queued        bool   `json:"queued"`
		NextAllowedAt string `json:"next_allowed_at,omitempty"`
	}{TypeTranscriptEmail, queued, optTime(nextAllowedAt)})
}
