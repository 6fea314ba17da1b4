// Outbox: the messages a page has accepted from its user and the server has
// not stored yet, one queue per conversation, sent in the order they were
// written.
//
// One message per conversation is in flight at a time: the next goes out
// when the previous one's ack (or its own message frame) arrives, so a
// refusal can never let a later message overtake an earlier one. A message
// refused for a reason that passes (rate_limited, too_many_pending,
// unavailable, internal) is sent again by itself after a pause, with the
// same client_msg_id; so is whatever was in flight when the socket closed,
// once the page is connected again (resume). The server stores a
// client_msg_id once and acknowledges a resend with "duplicate": true, so
// resending is always safe. A message refused for good (a reason that a
// resend would meet again) is set aside, marked failed, and the queue goes
// on.
//
// The pages warn before a reload or close loses what is queued (see
// hasUnsent).

import { newClientMsgId } from './ui.js';

// Codes after which the same message is sent again by itself.
const RETRY_CODES = new Set(['rate_limited', 'too_many_pending', 'unavailable', 'internal']);

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 8000;
// A message unanswered this long is sent again (the server answers every
// post within its --post-timeout, 10 s by default; this only guards against
// an answer lost with a socket that has not noticed yet).
const ANSWER_TIMEOUT_MS = 20000;

export function retryable(code) {
  return RETRY_CODES.has(code);
}

export class Outbox {
  // send(item) writes the post of item ({cmid, conv, text}) to the socket
  // and returns false when it cannot (not connected); onChange(item, state,
  // detail) tells the page what to show for item: 'queued' (behind another
  // one), 'waiting' (for the connection), 'sending', 'retrying' (detail:
  // {code, retryAt}), 'failed' (detail: {frame}) and 'done'.
  constructor({ send, onChange }) {
    this.sendPost = send;
    this.onChange = onChange;
    this.queues = new Map(); // conversation key -> [item]
    this.failed = new Map(); // cmid -> item (set aside for good)
    this.connected = false;
  }

  // key names a conversation's queue ('me' for a visitor's own).
  static key(conv) {
    return conv === null || conv === undefined ? 'me' : String(conv);
  }

  // push queues text for conversation conv (with the client_msg_id cmid,
  // a new one by default) and returns its client_msg_id. extra is kept on
  // the item for send (the staff page's based_on_seq and force).
  push(conv, text, cmid = newClientMsgId(), extra = {}) {
    const item = { ...extra, cmid, conv, text, state: 'new', attempt: 0, timer: null, sentAt: 0 };
    const k = Outbox.key(conv);
    if (!this.queues.has(k)) this.queues.set(k, []);
    this.queues.get(k).push(item);
    this.pump(k);
    return item.cmid;
  }

  // items lists the queued messages of conv, oldest first.
  items(conv) {
    return [...(this.queues.get(Outbox.key(conv)) || [])];
  }

  // failedItems lists the messages of conv set aside as failed (each with
  // the error frame that refused it), oldest first.
  failedItems(conv) {
    const k = Outbox.key(conv);
    return [...this.failed.values()].filter((it) => Outbox.key(it.conv) === k);
  }

  // size counts the messages not stored yet (failed ones included: their
  // text is not stored either).
  get size() {
    let n = this.failed.size;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  hasUnsent() {
    return this.size > 0;
  }

  find(cmid) {
    for (const [k, q] of this.queues) {
      const i = q.findIndex((it) => it.cmid === cmid);
      if (i >= 0) return { k, q, i, item: q[i] };
    }
    return null;
  }

  // stored settles the message with client_msg_id cmid: its ack, its
  // duplicate ack or its own message frame arrived. The next one goes out.
  stored(cmid) {
    if (!cmid) return false;
    const f = this.find(cmid);
    if (!f) return false;
    clearTimeout(f.item.timer);
    f.q.splice(f.i, 1);
    this.onChange(f.item, 'done', {});
    if (!f.q.length) this.queues.delete(f.k);
    this.pump(f.k);
    return true;
  }

  // refused handles an error frame naming cmid: a passing reason sends the
  // message again after a pause; another sets it aside as failed. It
  // returns false when cmid is not one of ours.
  refused(frame) {
    const f = this.find(frame.client_msg_id);
    if (!f) return false;
    const item = f.item;
    clearTimeout(item.timer);
    if (retryable(frame.code)) {
      const base = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** item.attempt);
      const delay = base / 2 + Math.random() * (base / 2);
      item.attempt++;
      item.state = 'retrying';
      this.onChange(item, 'retrying', { code: frame.code, retryAt: Date.now() + delay });
      item.timer = setTimeout(() => this.transmit(item), delay);
      return true;
    }
    f.q.splice(f.i, 1);
    if (!f.q.length) this.queues.delete(f.k);
    item.state = 'failed';
    item.frame = frame;
    this.failed.set(item.cmid, item);
    this.onChange(item, 'failed', { frame });
    this.pump(f.k);
    return true;
  }

  // retryNow sends a message waiting for its retry at once.
  retryNow(cmid) {
    const f = this.find(cmid);
    if (f && f.item.state === 'retrying') {
      clearTimeout(f.item.timer);
      this.transmit(f.item);
    }
  }

  // discard drops a failed message (or a queued one) for good.
  discard(cmid) {
    if (this.failed.delete(cmid)) return;
    const f = this.find(cmid);
    if (!f) return;
    clearTimeout(f.item.timer);
    f.q.splice(f.i, 1);
    if (!f.q.length) this.queues.delete(f.k);
    this.pump(f.k);
  }

  // up: the socket is ready for posts (after the welcome). Each queue's
  // first message goes out (again), with its client_msg_id.
  up() {
    this.connected = true;
    for (const k of this.queues.keys()) this.pump(k, true);
  }

  // down: the socket closed. What was in flight waits for the next up.
  down() {
    this.connected = false;
    for (const q of this.queues.values()) {
      for (const item of q) {
        clearTimeout(item.timer);
        if (item.state !== 'new') {
          item.state = 'waiting';
          this.onChange(item, 'waiting', {});
        }
      }
    }
  }

  // reset forgets everything (the server's store was replaced: these
  // messages belong to conversations that no longer exist).
  reset() {
    for (const q of this.queues.values()) for (const item of q) clearTimeout(item.timer);
    this.queues.clear();
    this.failed.clear();
  }

  // pump sends the first message of queue k unless it is in flight (or
  // again when resend), and marks the others as queued behind it.
  pump(k, resend = false) {
    const q = this.queues.get(k);
    if (!q || !q.length) return;
    const head = q[0];
    if (resend || head.state === 'new' || head.state === 'waiting' || head.state === 'queued') {
      if (head.state !== 'retrying' || resend) this.transmit(head);
    }
    for (const item of q.slice(1)) {
      if (item.state === 'new' || item.state === 'waiting') {
        item.state = 'queued';
        this.onChange(item, this.connected ? 'queued' : 'waiting', {});
      }
    }
  }

  transmit(item) {
    clearTimeout(item.timer);
    item.timer = null;
    if (!this.connected || !this.sendPost(item)) {
      item.state = 'waiting';
      this.onChange(item, 'waiting', {});
      return;
    }
    item.state = 'sending';
    item.sentAt = Date.now();
    this.onChange(item, 'sending', {});
    item.timer = setTimeout(() => {
      // No answer: send it again (stored once whatever happened).
      if (item.state === 'sending') this.transmit(item);
    }, ANSWER_TIMEOUT_MS);
  }
}
