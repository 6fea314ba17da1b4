// The staff inbox: /admin/.
//
// The inbox frame lists every conversation; inbox_update frames keep it
// current and reorder it (most recent activity first). Staff sessions receive
// every conversation's messages; the one on screen is also followed through
// its grain with `open`, whose `opened` answer says from which seq live
// delivery continues: the page loads the newest page before it (first time)
// or the history after the last seq it shows (after a reconnect).
//
// Unread: per conversation, the messages after the last one this staff
// member saw on screen, not counting their own. What was seen is kept in
// localStorage (per staff user), so it survives reloads and is shared by the
// user's tabs; it is not shared with other staff members.

import { Connection } from './connection.js';
import { Thread } from './thread.js';
import { $, el, chars, errorText, listTime, newClientMsgId, StatusView, fetchSession, autoGrow } from './ui.js';

const PAGE = 50;

let me = null;
let maxChars = 4000;
const entries = new Map(); // conversation id -> entry
let openId = null; // the conversation on screen
let followed = null; // the conversation `open`ed on the current socket
let loaded = false; // has the conversation on screen had its first page?
let pendingHistory = []; // { conv, kind } awaiting their history frame, in order
let reads = {}; // conversation id -> last seq seen (localStorage)

const status = new StatusView({ pill: $('state'), banner: $('banner') });
const thread = new Thread({
  scroller: $('scroller'),
  list: $('messages'),
  empty: $('empty'),
  older: $('older'),
  viewer: 'staff',
  onOlder: (beforeSeq) => requestHistory(openId, { before_seq: beforeSeq, limit: PAGE }, 'older'),
  onRetry: (cmid, text) => conn.send({ message: text, conversation_id: openId, client_msg_id: cmid }),
});

const conn = new Connection({
  onWelcome: welcome,
  onFrame: frame,
  onState: (state, detail) => {
    status.set(state, detail);
    setComposerEnabled(state !== 'signed-out' && state !== 'stopped' && openId !== null && me !== null && me.is_admin);
  },
  onDown: () => {
    followed = null;
    pendingHistory = [];
    thread.loadingOlder = false;
    thread.refresh();
  },
});
status.retryNow = () => conn.reconnectNow();

function requestHistory(conv, req, kind) {
  if (!conn.send({ type: 'history', conversation_id: conv, ...req })) return false;
  pendingHistory.push({ conv, kind });
  return true;
}

// --- read state ---------------------------------------------------------

function readsKey() {
  return `grainchat.read.${me.id}`;
}

function loadReads() {
  try {
    reads = JSON.parse(localStorage.getItem(readsKey()) || '{}') || {};
  } catch {
    reads = {};
  }
}

function markRead(e) {
  if (!e || document.visibilityState !== 'visible') return;
  const seq = Math.max(e.last_seq, openId === e.id ? thread.maxSeq : 0);
  if (e.unread === 0 && (reads[e.id] || 0) >= seq) return;
  e.unread = 0;
  if ((reads[e.id] || 0) < seq) {
    reads[e.id] = seq;
    try {
      localStorage.setItem(readsKey(), JSON.stringify(reads));
    } catch {
      // storage full or denied: unread counts reset on reload
    }
  }
  renderEntry(e);
  renderTitle();
}

// Another tab of the same staff member read a conversation.
addEventListener('storage', (ev) => {
  if (!me || ev.key !== readsKey()) return;
  loadReads();
  for (const e of entries.values()) {
    if ((reads[e.id] || 0) >= e.last_seq && e.unread) {
      e.unread = 0;
      renderEntry(e);
    }
  }
  renderTitle();
});

document.addEventListener('visibilitychange', () => {
  if (openId !== null) markRead(entries.get(openId));
});

// --- frames -------------------------------------------------------------

function welcome(w) {
  me = w.user;
  thread.me = me;
  maxChars = w.max_message_chars || maxChars;
  followed = null;
  pendingHistory = [];
  $('whoami').textContent = `Signed in as ${me.name}${me.is_admin ? ' (staff)' : ''}`;
  if (!me.is_admin) {
    conn.stop();
    status.set('stopped', {});
    $('banner').replaceChildren(
      el('span', { text: `The inbox is for staff; ${me.name} is signed in as a visitor. ` }),
      el('a', { href: '/', text: 'Open the chat' }),
    );
    $('banner').hidden = false;
    return;
  }
  loadReads();
  // The inbox frame follows.
}

function frame(f) {
  switch (f.type) {
    case 'inbox':
      for (const c of Array.isArray(f.conversations) ? f.conversations : []) update(c);
      $('inbox-loading').hidden = true;
      renderList();
      if (openId === null) {
        const fromHash = conversationFromHash();
        if (fromHash !== null && entries.has(fromHash)) show(fromHash, false);
      } else {
        follow();
      }
      return;
    case 'inbox_update':
      if (f.conversation) {
        update(f.conversation);
        renderList();
      }
      return;
    case 'message':
    case undefined:
      if (typeof f.message !== 'string' || typeof f.conversation_id !== 'number') return;
      update({
        conversation_id: f.conversation_id,
        last_seq: f.seq,
        last_message_at: f.created_at,
        last_message: f,
        user: f.sender_is_admin ? undefined : { id: f.sender_id, name: f.sender_name },
      });
      renderList();
      if (f.conversation_id === openId) {
        thread.add(f);
        markRead(entries.get(openId));
      }
      return;
    case 'opened':
      if (f.conversation_id !== openId || followed !== openId) return;
      if (!loaded) {
        if (f.last_seq > 0) requestHistory(openId, { before_seq: f.last_seq + 1, limit: PAGE }, 'latest');
        else {
          loaded = true;
          thread.refresh();
        }
      } else {
        requestHistory(openId, { after_seq: thread.maxSeq, limit: 100 }, 'after');
      }
      for (const { cmid, text } of thread.unsent()) {
        conn.send({ message: text, conversation_id: openId, client_msg_id: cmid });
      }
      return;
    case 'history': {
      const req = pendingHistory.shift();
      if (!req || f.conversation_id !== openId || req.conv !== openId) return;
      const msgs = Array.isArray(f.messages) ? f.messages : [];
      if (req.kind === 'latest') {
        loaded = true;
        thread.setLatest(msgs, f.has_more);
      } else if (req.kind === 'older') {
        thread.addOlder(msgs, f.has_more);
      } else {
        thread.add(...msgs);
        if (f.has_more && msgs.length) {
          requestHistory(openId, { after_seq: msgs[msgs.length - 1].seq, limit: 100 }, 'after');
        }
      }
      markRead(entries.get(openId));
      return;
    }
    case 'ack':
      thread.ack(f);
      return;
    case 'error':
      if (f.client_msg_id && thread.fail(f.client_msg_id, errorText(f, maxChars), retryable(f.code))) return;
      if (!f.client_msg_id && f.conversation_id && pendingHistory.length && pendingHistory[0].conv === f.conversation_id) {
        pendingHistory.shift();
        thread.loadingOlder = false;
        thread.refresh();
      }
      notice(errorText(f, maxChars));
      return;
    default:
      return; // left, and frame types this page does not know
  }
}

function retryable(code) {
  return code === 'unavailable' || code === 'internal' || code === 'too_many_pending' || code === 'rate_limited';
}

let noticeTimer = null;
function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 8000);
}

// --- the inbox list -----------------------------------------------------

// update merges an inbox entry (or what a message frame says) into the list
// and counts what is new as unread.
function update(c) {
  const id = c.conversation_id;
  let e = entries.get(id);
  const seq = c.last_seq || 0;
  if (!e) {
    e = { id, user: null, last_seq: 0, last_message_at: null, last_message: null, unread: 0, li: null };
    entries.set(id, e);
    e.unread = Math.max(0, seq - (reads[id] || 0));
    if (c.last_message && c.last_message.sender_id === me.id && e.unread > 0) e.unread--;
  } else if (seq > e.last_seq) {
    let fresh = seq - Math.max(e.last_seq, reads[id] || 0);
    if (c.last_message && c.last_message.seq === seq && c.last_message.sender_id === me.id) fresh--;
    e.unread += Math.max(0, fresh);
  }
  if (c.user && (c.user.external_id !== undefined || !e.user)) e.user = c.user;
  if (seq >= e.last_seq) {
    e.last_seq = seq;
    if (c.last_message_at) e.last_message_at = c.last_message_at;
    if (c.last_message) e.last_message = c.last_message;
  }
  if (id === openId) markRead(e);
  renderEntry(e);
}

function displayName(e) {
  return (e.user && e.user.name) || `Conversation ${e.id}`;
}

function previewOf(e) {
  const m = e.last_message;
  if (!m) return 'No messages yet';
  let text = m.message.replace(/\s+/g, ' ').trim();
  if (text.length > 140) text = text.slice(0, 140) + '…';
  if (me && m.sender_id === me.id) return `You: ${text}`;
  if (m.sender_is_admin) return `${m.sender_name}: ${text}`;
  return text;
}

function initial(name) {
  const first = [...name.trim()][0] || '?';
  return first.toUpperCase();
}

function hue(id) {
  return (id * 137) % 360;
}

function renderEntry(e) {
  if (!e.li) {
    const button = el('button', { type: 'button', class: 'conv', dataset: { conv: String(e.id) } });
    button.addEventListener('click', () => show(e.id, true));
    e.li = el('li', {}, button);
    e.button = button;
  }
  const name = displayName(e);
  const avatar = el('span', { class: 'avatar', 'aria-hidden': 'true', text: initial(name) });
  avatar.style.backgroundColor = `hsl(${hue(e.id)} 55% 45%)`;
  const badge =
    e.unread > 0
      ? el('span', { class: 'badge', title: `${e.unread} unread`, text: e.unread > 99 ? '99+' : String(e.unread) })
      : null;
  e.button.replaceChildren(
    avatar,
    el(
      'span',
      { class: 'conv-main' },
      el(
        'span',
        { class: 'conv-top' },
        el('span', { class: 'conv-name', text: name }),
        el('time', { class: 'conv-time', datetime: e.last_message_at || '', text: e.last_message_at ? listTime(e.last_message_at) : '' }),
      ),
      el('span', { class: 'conv-bottom' }, el('span', { class: 'conv-preview', text: previewOf(e) }), badge),
    ),
  );
  e.button.classList.toggle('unread', e.unread > 0);
  e.button.classList.toggle('active', e.id === openId);
  if (e.id === openId) e.button.setAttribute('aria-current', 'true');
  else e.button.removeAttribute('aria-current');
  e.button.setAttribute('aria-label', `${name}${e.unread ? `, ${e.unread} unread` : ''}: ${previewOf(e)}`);
}

function byActivity(a, b) {
  const ta = a.last_message_at || '';
  const tb = b.last_message_at || '';
  if (ta !== tb) return ta < tb ? 1 : -1; // RFC 3339 UTC strings sort as times
  if (a.last_seq !== b.last_seq) return b.last_seq - a.last_seq;
  return b.id - a.id;
}

function renderList() {
  const list = $('inbox');
  const sorted = [...entries.values()].sort(byActivity);
  let expected = list.firstElementChild;
  for (const e of sorted) {
    if (e.li !== expected) list.insertBefore(e.li, expected);
    else expected = expected.nextElementSibling;
  }
  $('inbox-empty').hidden = entries.size > 0;
  $('inbox-count').textContent = entries.size === 1 ? '1 conversation' : `${entries.size} conversations`;
  renderTitle();
}

function renderTitle() {
  let total = 0;
  for (const e of entries.values()) total += e.unread;
  document.title = total ? `(${total}) Inbox — grainchat` : 'Inbox — grainchat';
}

// --- the conversation on screen ----------------------------------------

function conversationFromHash() {
  const m = /^#c(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : null;
}

function show(id, push) {
  if (id === openId) {
    document.body.classList.add('conversation-open');
    return;
  }
  if (followed !== null) {
    conn.send({ type: 'leave', conversation_id: followed });
    followed = null;
  }
  const previous = entries.get(openId);
  openId = id;
  loaded = false;
  thread.reset();
  if (previous) renderEntry(previous);
  const e = entries.get(id);
  $('conv-name').textContent = displayName(e);
  $('conv-sub').textContent = e.user && e.user.external_id ? `Visitor ${e.user.external_id} · conversation ${id}` : `Conversation ${id}`;
  $('pane').hidden = false;
  $('pane-empty').hidden = true;
  document.body.classList.add('conversation-open');
  if (push) history.pushState(null, '', `#c${id}`);
  setComposerEnabled(me !== null && me.is_admin);
  follow();
  markRead(e);
  renderEntry(e);
  if (matchMedia('(min-width: 761px)').matches) $('text').focus();
}

function follow() {
  if (openId === null || followed === openId) return;
  if (conn.send({ type: 'open', conversation_id: openId })) followed = openId;
}

function hide() {
  document.body.classList.remove('conversation-open');
}

$('back').addEventListener('click', () => {
  if (conversationFromHash() !== null) history.back();
  hide();
});

addEventListener('popstate', () => {
  const id = conversationFromHash();
  if (id === null) hide();
  else if (entries.has(id)) show(id, false);
});

// --- the composer -------------------------------------------------------

const input = $('text');
const fit = autoGrow(input);

function setComposerEnabled(on) {
  input.disabled = !on;
  $('send').disabled = !on;
}

function updateCounter() {
  const n = chars(input.value.trim());
  const c = $('counter');
  c.hidden = n < maxChars * 0.8;
  c.textContent = `${n} / ${maxChars}`;
  c.classList.toggle('over', n > maxChars);
}
input.addEventListener('input', updateCounter);

function submit() {
  const text = input.value.trim();
  if (!text || openId === null || !me) return;
  const n = chars(text);
  if (n > maxChars) {
    notice(`Message too long: ${n} characters, the limit is ${maxChars}. Shorten it and send again.`);
    return;
  }
  const cmid = newClientMsgId();
  const sent = conn.send({ message: text, conversation_id: openId, client_msg_id: cmid });
  thread.addPending(cmid, text, !sent); // if not sent: sent after the conversation is reopened
  input.value = '';
  fit();
  updateCounter();
  $('notice').hidden = true;
}

$('composer').addEventListener('submit', (ev) => {
  ev.preventDefault();
  submit();
  input.focus();
});
input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submit();
  }
});

fetchSession('').then((s) => {
  if (s && s.dev) $('dev-banner').hidden = false;
});
conn.start();
