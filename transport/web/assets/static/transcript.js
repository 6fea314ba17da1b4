// The visitor's "Email me this conversation" (docs/EMAIL.md, "Transcripts by
// email"): offered when the welcome says the server can email this visitor
// (transcript_email); a click sends {"type":"transcript_email"}, and the
// answer (or the error email_unavailable) says what happens, in a note.

import { $ } from './ui.js';

export class TranscriptEmail {
  constructor(send) {
    this.send = send; // (frame) => bool
    this.button = $('email-transcript');
    this.note = $('transcript-note');
    this.button.addEventListener('click', () => this.ask());
  }

  // welcome shows the button when the server offers it.
  welcome(w) {
    this.button.hidden = w.transcript_email !== true;
  }

  ask() {
    if (!this.send({ type: 'transcript_email' })) {
      this.say('Not connected: try again in a moment.');
      return;
    }
    this.button.disabled = true;
    this.say('Asking…');
  }

  // answer handles the server's transcript_email frame.
  answer(f) {
    this.button.disabled = false;
    if (f.queued === true) {
      this.say('We will email you this conversation in a moment.');
      return;
    }
    const at = Date.parse(f.next_allowed_at || '');
    const when = Number.isNaN(at) ? 'later' : `after ${new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
    this.say(`We emailed it to you a few minutes ago. You can ask again ${when}.`);
  }

  // refused handles an error frame; true when it was about this.
  refused(f) {
    if (f.code !== 'email_unavailable') return false;
    this.button.disabled = false;
    this.button.hidden = true;
    this.say('Email is not available for this chat.');
    return true;
  }

  say(text) {
    this.note.textContent = text;
    this.note.hidden = false;
  }
}
