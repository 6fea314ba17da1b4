// Thread: one conversation's messages on screen, in seq order, each seq
// once. Messages come from history pages and live frames in any order and
// possibly twice (a resume overlaps what is shown); a seq already shown is
// ignored. Messages the user sent wait as "pending" (keyed by client_msg_id)
// until their ack or their own frame arrives.

import { el, shortTime, fullTime } from './ui.js';

export class Thread {
  // viewer: 'visitor' (own messages on the right) or 'staff' (every staff
  // message on the right, the visitor's on the left).
  constructor({ scroller, list, empty, older, viewer, onOlder, onRetry }) {
    this.scroller = scroller;
    this.list = list;
    this.empty = empty;
    this.older = older;
    this.viewer = viewer;
    this.onOlder = onOlder;
    this.onRetry = onRetry;
    this.me = null;
    this.reset();
    scroller.addEventListener('scroll', () => this.maybeLoadOlder(), { passive: true });
    older.addEventListener('click', () => this.loadOlder());
  }

  reset() {
    this.bySeq = new Map();
    this.pending = new Map(); // client_msg_id -> { li, text, failed }
    this.minSeq = 0;
    this.maxSeq = 0;
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
    let before = null;
    for (let node = this.list.lastElementChild; node; node = node.previousElementSibling) {
      if (node.dataset.seq !== undefined && Number(node.dataset.seq) < m.seq) break;
      before = node;
    }
    this.list.insertBefore(li, before);
    if (!this.minSeq || m.seq < this.minSeq) this.minSeq = m.seq;
    if (m.seq > this.maxSeq) this.maxSeq = m.seq;
    return true;
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

  // addPending shows a message the user just sent, before its ack; queued
  // when the connection is down (it is sent after the next welcome).
  addPending(clientMsgId, text, queued = false) {
    const li = el(
      'li',
      { class: 'msg ours mine pending', dataset: { cmid: clientMsgId } },
      el('div', { class: 'bubble' }, el('p', { class: 'text', text })),
      el('div', { class: 'meta' }, el('span', { class: 'status', text: queued ? 'Waiting for the connection…' : 'Sending…' })),
    );
    this.list.append(li);
    this.pending.set(clientMsgId, { li, text, failed: false });
    this.refresh();
    this.scrollToBottom();
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

  // fail marks a pending message as refused, with the reason in words and,
  // when retrying can help, a button to send it again.
  fail(clientMsgId, text, retryable) {
    const p = this.pending.get(clientMsgId);
    if (!p) return false;
    p.failed = true;
    p.li.classList.add('failed');
    p.li.classList.remove('pending');
    const meta = p.li.querySelector('.meta');
    meta.replaceChildren(el('span', { class: 'status error', text }));
    if (retryable) {
      meta.append(
        ' ',
        el('button', {
          type: 'button',
          class: 'link',
          text: 'Retry',
          onclick: () => {
            p.failed = false;
            p.li.classList.remove('failed');
            p.li.classList.add('pending');
            meta.replaceChildren(el('span', { class: 'status', text: 'Sending…' }));
            this.onRetry(clientMsgId, p.text);
          },
        }),
      );
    }
    meta.append(
      ' ',
      el('button', {
        type: 'button',
        class: 'link',
        text: 'Discard',
        onclick: () => {
          p.li.remove();
          this.pending.delete(clientMsgId);
          this.refresh();
        },
      }),
    );
    return true;
  }

  // unsent lists the pending messages to send again after a reconnect, and
  // marks them as being sent.
  unsent() {
    const out = [];
    for (const [cmid, p] of this.pending) {
      if (p.failed) continue;
      p.li.querySelector('.meta').replaceChildren(el('span', { class: 'status', text: 'Sending…' }));
      out.push({ cmid, text: p.text });
    }
    return out;
  }

  refresh() {
    this.older.hidden = !this.hasMore;
    this.older.disabled = this.loadingOlder;
    this.older.textContent = this.loadingOlder ? 'Loading earlier messages…' : 'Load earlier messages';
    if (this.empty) this.empty.hidden = this.bySeq.size > 0 || this.pending.size > 0 || this.hasMore;
  }
}
