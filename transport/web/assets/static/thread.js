// Thread: one conversation's messages on screen, in seq order, each seq
// once. Messages come from history pages and live frames in any order and
// possibly twice (a resume overlaps what is shown); a seq already shown is
// ignored. Messages the user wrote wait as "pending" (keyed by
// client_msg_id, in the order written, below the stored ones) until their
// ack or their own frame arrives; the page's Outbox sends them.
//
// Desk events (a status or assignee change, docs/PROTOCOL.md "Support desk")
// show as a line between messages: after the message whose seq is the
// event's after_seq, in id order, each id once.
//
// Internal notes (kind "note", staff only) show in the inbox as a yellow
// block, "Note by Ann" above the text; the visitor's thread shows status
// events only, whatever it is given.
//
// Read receipts (docs/PROTOCOL.md, "Read receipts"): setSeen says how far
// the other side has read; "Seen" shows under the last of "our" messages up
// to there (the visitor's own; in the inbox, any staff reply).

import { el, shortTime, fullTime } from './ui.js';

export class Thread {
  // viewer: 'visitor' (own messages on the right) or 'staff' (every staff
  // message on the right, the visitor's on the left).
  constructor({ scroller, list, empty, older, viewer, onOlder, onRetry, onDiscard }) {
    this.scroller = scroller;
    this.list = list;
    this.empty = empty;
    this.older = older;
    this.viewer = viewer;
    this.onOlder = onOlder;
    this.onRetry = onRetry;
    this.onDiscard = onDiscard;
    this.me = null;
    this.reset();
    scroller.addEventListener('scroll', () => this.maybeLoadOlder(), { passive: true });
    older.addEventListener('click', () => this.loadOlder());
  }

  reset() {
    this.bySeq = new Map();
    this.events = new Set(); // event ids shown
    this.pending = new Map(); // client_msg_id -> { li, text, failed }
    this.minSeq = 0;
    this.maxSeq = 0;
    this.seenSeq = 0; // the other side has read up to this seq
    this.seenLi = null; // the message labelled "Seen"
    this.hasMore = false;
    this.loadingOlder = false;
    this.list.replaceChildren();
    this.refresh();
  }

  get count() {
    return this.bySeq.size;
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  mine(m) {
    return this.me !== null && m.sender_id === this.me.id;
  }

  // add shows live messages (or a page after the newest shown); older
  // pages go through addOlder.
  // It returns how many were new.
  add(...msgs) {
    const stick = this.nearBottom();
    let own = false;
    let added = 0;
    for (const m of msgs) {
      if (this.insert(m)) {
        added++;
        if (this.mine(m)) own = true;
      }
    }
    this.refresh();
    if (stick || own) this.scrollToBottom();
    return added;
  }

  // addOlder shows a page of older messages above the ones shown, keeping
  // what the user is looking at in place.
  addOlder(msgs, hasMore) {
    const s = this.scroller;
    const fromBottom = s.scrollHeight - s.scrollTop;
    for (const m of msgs) this.insert(m);
    this.hasMore = hasMore;
    this.loadingOlder = false;
    this.refresh();
    s.scrollTop = s.scrollHeight - fromBottom;
    this.fill();
  }

  // setLatest shows the first page (the newest messages) and scrolls down.
  setLatest(msgs, hasMore) {
    for (const m of msgs) this.insert(m);
    this.hasMore = hasMore;
    this.loadingOlder = false;
    this.refresh();
    this.scrollToBottom();
    this.fill();
  }

  // fill loads older pages while the messages do not fill the view.
  fill() {
    if (this.hasMore && this.scroller.scrollHeight <= this.scroller.clientHeight + 4) this.loadOlder();
  }

  maybeLoadOlder() {
    if (this.scroller.scrollTop < 120) this.loadOlder();
  }

  loadOlder() {
    if (!this.hasMore || this.loadingOlder || !this.minSeq) return;
    if (this.onOlder(this.minSeq)) {
      this.loadingOlder = true;
      this.refresh();
    }
  }

  insert(m) {
    if (typeof m.seq !== 'number' || this.bySeq.has(m.seq)) {
      this.settle(m.client_msg_id, m);
      return false;
    }
    this.settle(m.client_msg_id, m);
    const li = this.render(m);
    this.bySeq.set(m.seq, li);
    this.place(li, m.seq, 0);
    if (!this.minSeq || m.seq < this.minSeq) this.minSeq = m.seq;
    if (m.seq > this.maxSeq) this.maxSeq = m.seq;
    return true;
  }

  // place inserts li at its place in the thread: by position (a message's
  // seq; an event's after_seq + 0.5), then by event id; pending bubbles
  // (no position) stay last.
  place(li, pos, eventId) {
    li.dataset.pos = String(pos);
    let before = null;
    for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node.dataset.pos !== undefined) {
        const p = Number(node.dataset.pos);
        if (p < pos || (p === pos && Number(node.dataset.event || 0) < eventId)) break;
      }
      before = node;
    }
    this.list.insertBefore(li, before);
  }

  // addEvents shows desk events (each id once) at their place; it returns
  // how many were new.
  addEvents(...events) {
    const stick = this.nearBottom();
    let added = 0;
    for (const ev of events) {
      if (!ev || typeof ev.id !== 'number' || this.events.has(ev.id)) continue;
      if (this.viewer === 'visitor' && ev.kind !== 'status') continue;
      this.events.add(ev.id);
      const time = el('time', { datetime: ev.created_at, title: fullTime(ev.created_at), text: shortTime(ev.created_at) });
      const li =
        ev.kind === 'note'
          ? el(
              'li',
              { class: 'event event-note note', dataset: { event: String(ev.id) } },
              el('div', { class: 'note-head' }, el('span', { class: 'note-by', text: this.noteBy(ev) }), time),
              el('p', { class: 'note-body', text: typeof ev.body === 'string' ? ev.body : '' }),
            )
          : el('li', { class: `event event-${ev.kind}`, dataset: { event: String(ev.id) } }, el('span', { class: 'event-text', text: this.eventText(ev) }), time);
      this.place(li, (ev.after_seq || 0) + 0.5, ev.id);
      added++;
    }
    if (added) {
      this.refresh();
      if (stick) this.scrollToBottom();
    }
    return added;
  }

  // noteBy labels a note with its author: "Note by Ann", "Note by you".
  noteBy(ev) {
    const actor = ev.actor || {};
    if (this.me !== null && actor.id === this.me.id) return 'Note by you';
    return `Note by ${actor.name || 'someone'}`;
  }

  // eventText puts an event into words for this viewer.
  eventText(ev) {
    const actor = ev.actor || {};
    const mine = this.me !== null && actor.id === this.me.id;
    const who = mine ? 'You' : actor.name || 'Someone';
    if (ev.kind === 'status') {
      if (this.viewer === 'visitor') {
        if (ev.status === 'resolved') return mine ? 'You closed this conversation.' : `${who} (support) marked this conversation as resolved.`;
        if (ev.status === 'pending') return 'Support is waiting for your reply.';
        return 'This conversation was reopened.';
      }
      if (ev.status === 'resolved') return `${who} resolved the conversation`;
      if (ev.status === 'pending') return `${who} marked the conversation pending`;
      return `${who} reopened the conversation`;
    }
    if (ev.kind === 'assignee') {
      const to = ev.assignee;
      if (!to) return `${who} unassigned the conversation`;
      if (to.id === actor.id) return `${who} took the conversation`;
      const toName = this.me !== null && to.id === this.me.id ? 'you' : to.name;
      return `${who} assigned the conversation to ${toName}`;
    }
    return `${who} changed the conversation`;
  }

  // settle removes the pending bubble of one of our messages once the
  // message itself is known.
  settle(clientMsgId, m) {
    if (!clientMsgId || !this.mine(m)) return;
    const p = this.pending.get(clientMsgId);
    if (!p) return;
    p.li.remove();
    this.pending.delete(clientMsgId);
  }

  render(m) {
    const mine = this.mine(m);
    const ours = this.viewer === 'staff' ? m.sender_is_admin : mine;
    let who;
    if (mine) who = 'You';
    else if (m.sender_is_admin && this.viewer === 'visitor') who = `${m.sender_name} · Support`;
    else who = m.sender_name;
    const classes = ['msg', ours ? 'ours' : 'theirs', m.sender_is_admin ? 'from-staff' : 'from-visitor'];
    if (mine) classes.push('mine');
    return el(
      'li',
      { class: classes.join(' '), dataset: { seq: String(m.seq), id: String(m.id ?? '') } },
      el('div', { class: 'bubble' }, el('p', { class: 'text', text: m.message })),
      el(
        'div',
        { class: 'meta' },
        el('span', { class: 'who', text: who }),
        el('time', { datetime: m.created_at, title: fullTime(m.created_at), text: shortTime(m.created_at) }),
      ),
    );
  }

  // addPending shows a message the user wrote, before it is stored; the
  // page's Outbox sends it and reports its state through setPending.
  addPending(clientMsgId, text) {
    const li = el(
      'li',
      { class: 'msg ours mine pending', dataset: { cmid: clientMsgId } },
      el('div', { class: 'bubble' }, el('p', { class: 'text', text })),
      el('div', { class: 'meta' }, el('span', { class: 'status', text: 'Sending…' })),
    );
    this.list.append(li);
    this.pending.set(clientMsgId, { li, text, failed: false });
    this.refresh();
    this.scrollToBottom();
  }

  // removePending drops a pending bubble (its text went back to the
  // composer, or was discarded).
  removePending(clientMsgId) {
    const p = this.pending.get(clientMsgId);
    if (!p) return null;
    p.li.remove();
    this.pending.delete(clientMsgId);
    this.refresh();
    return p.text;
  }

  // ack turns a pending message into the stored one.
  ack(frame) {
    const p = this.pending.get(frame.client_msg_id);
    if (!p || !this.me) return;
    this.insert({
      id: frame.id,
      conversation_id: frame.conversation_id,
      seq: frame.seq,
      created_at: frame.created_at,
      client_msg_id: frame.client_msg_id,
      message: p.text,
      sender_id: this.me.id,
      sender_name: this.me.name,
      sender_is_admin: this.me.is_admin,
    });
    this.refresh();
  }

  // setPending shows a pending message's state in words: 'sending',
  // 'queued', 'waiting' (for the connection), 'retrying' (detail.code) or
  // 'failed' (detail.text: the reason in words).
  setPending(clientMsgId, state, detail = {}) {
    const p = this.pending.get(clientMsgId);
    if (!p) return false;
    const meta = p.li.querySelector('.meta');
    p.failed = state === 'failed' || state === 'stale';
    p.li.classList.toggle('failed', p.failed);
    p.li.classList.toggle('stale', state === 'stale');
    p.li.classList.toggle('pending', !p.failed);
    p.li.classList.toggle('retrying', state === 'retrying');
    p.li.dataset.state = state;
    const button = (text, onclick) => el('button', { type: 'button', class: 'link', text, onclick });
    switch (state) {
      case 'queued':
        meta.replaceChildren(el('span', { class: 'status', text: 'Queued' }));
        break;
      case 'waiting':
        meta.replaceChildren(el('span', { class: 'status', text: 'Waiting for the connection…' }));
        break;
      case 'retrying': {
        let text = 'Not confirmed yet; sending it again in a moment.';
        if (detail.code === 'rate_limited' || detail.code === 'too_many_pending') {
          text = 'Sending too fast; this message goes out again in a moment.';
        } else if (detail.code === 'unavailable') {
          text = 'The chat is temporarily unavailable; this message was not confirmed. Sending it again in a moment.';
        }
        meta.replaceChildren(
          el('span', { class: 'status error', text }),
          ' ',
          button('Retry now', () => this.onRetry(clientMsgId)),
        );
        break;
      }
      case 'stale':
        // The stale-reply guard refused it: messages arrived after the
        // ones this reply was written after. detail: {onForce, onEdit}.
        meta.replaceChildren(
          el('span', { class: 'status error', text: 'New messages arrived while you were writing this reply. Read them, then:' }),
          ' ',
          button('Send anyway', () => detail.onForce && detail.onForce()),
          ' ',
          button('Edit', () => detail.onEdit && detail.onEdit()),
        );
        break;
      case 'failed':
        meta.replaceChildren(
          el('span', { class: 'status error', text: detail.text || 'This message could not be sent.' }),
          ' ',
          button('Discard', () => {
            p.li.remove();
            this.pending.delete(clientMsgId);
            this.refresh();
            if (this.onDiscard) this.onDiscard(clientMsgId);
          }),
        );
        break;
      default:
        meta.replaceChildren(el('span', { class: 'status', text: 'Sending…' }));
    }
    return true;
  }

  // setSeen takes a read receipt: the other side has read up to seq.
  // Receipts only move forward.
  setSeen(seq) {
    if (typeof seq !== 'number' || seq <= this.seenSeq) return;
    this.seenSeq = seq;
    this.renderSeen();
  }

  // renderSeen puts "Seen" under the last of our messages the other side
  // has read (only that one).
  renderSeen() {
    let target = null;
    const ours = this.viewer === 'visitor' ? 'mine' : 'from-staff';
    for (let s = Math.min(this.seenSeq, this.maxSeq); s > 0 && s >= this.minSeq; s--) {
      const li = this.bySeq.get(s);
      if (li && li.classList.contains(ours)) {
        target = li;
        break;
      }
    }
    if (target === this.seenLi) return;
    if (this.seenLi) this.seenLi.querySelector('.meta .seen')?.remove();
    this.seenLi = target;
    if (target) target.querySelector('.meta').append(el('span', { class: 'seen', text: 'Seen' }));
  }

  refresh() {
    this.renderSeen();
    this.older.hidden = !this.hasMore;
    this.older.disabled = this.loadingOlder;
    this.older.textContent = this.loadingOlder ? 'Loading earlier messages…' : 'Load earlier messages';
    if (this.empty) this.empty.hidden = this.bySeq.size > 0 || this.pending.size > 0 || this.hasMore;
  }
}
