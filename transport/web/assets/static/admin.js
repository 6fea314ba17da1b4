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
//
// Paging: the inbox frame holds the first page (most recent activity first)
// and, when there are more, has_more and next_cursor; the page asks for the
// next page ({"type":"inbox","cursor":…}) when the end of the list scrolls
// into view. An inbox frame that echoes a cursor continues the list; one
// without is a fresh first page (after a reconnect) and replaces it. Live
// updates add conversations that no page has brought yet at the top; every
// conversation is listed once (the entry with the newest last_seq wins).
//
// Replies go through the Outbox (outbox.js), a queue per conversation: in
// order, one at a time, sent again by themselves after a refusal that passes
// and after a reconnect; the page warns before a reload loses them.
//
// Store identity: welcome and inbox name the server's store (store_id).
// When it changes (or the inbox says a conversation ends before what the page
// holds: a restored database) every conversation, message, read mark and
// queued reply the page holds belongs to a past that no longer exists (its
// ids may now name other people): all of it is dropped, and the page says so.

import { Connection } from './connection.js';
import { Thread } from './thread.js';
import { Outbox } from './outbox.js';
import { $, el, chars, errorText, listTime, newClientMsgId, StatusView, fetchSession, autoGrow, showResetNote, rememberStore } from './ui.js';

const PAGE = 50;
const INBOX_PAGE = 50;

let me = null;
let maxChars = 4000;
const entries = new Map(); // conversation id -> entry
let openId = null; // the conversation on screen
let followed = null; // the conversation `open`ed on the current socket
let loaded = false; // has the conversation on screen had its first page?
let pendingHistory = []; // { conv, kind } awaiting their history frame, in order
let reads = {}; // conversation id -> last seq seen (localStorage)
let nextCursor = null; // the inbox page after the loaded ones, when has_more
let loadingCursor = null; // the cursor asked for, until its page arrives

const status = new StatusView({ pill: $('state'), banner: $('banner') });
const thread = new Thread({
  scroller: $('scroller'),
  list: $('messages'),
  empty: $('empty'),
  older: $('older'),
  viewer: 'staff',
  onOlder: (beforeSeq) => requestHistory(openId, { before_seq: beforeSeq, limit: PAGE }, 'older'),
  onRetry: (cmid) => outbox.retryNow(cmid),
  onDiscard: (cmid) => outbox.discard(cmid),
});

const outbox = new Outbox({
  send: (item) => conn.send({ message: item.text, conversation_id: item.conv, client_msg_id: item.cmid }),
  onChange: (item, state, detail) => {
    if (state === 'done' || item.conv !== openId) return; // the thread settles it from the ack or the message
    thread.setPending(item.cmid, state, { code: detail.code, text: detail.frame && errorText(detail.frame, maxChars) });
  },
});

// Leaving the page (reload, close, sign out) would lose what is not stored
// yet: the browser asks first.
addEventListener('beforeunload', (ev) => {
  if (outbox.hasUnsent() || input.value.trim()) {
    ev.preventDefault();
    ev.returnValue = '';
  }
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
    loadingCursor = null;
    thread.loadingOlder = false;
    thread.refresh();
    outbox.down();
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
  checkStore(w.store_id);
  outbox.up();
  // The inbox frame follows.
}

// The store the read marks (and the page's state) come from. Not per user:
// a user's id is itself one of the store's ids.
const STORE_KEY = 'grainchat.store.inbox';

// checkStore starts over when the server names another store than the one
// this page's state (or this staff member's read marks) came from.
function checkStore(storeId) {
  if (rememberStore(storeId, STORE_KEY, 'local') === 'changed') startOver();
}

// startOver drops every conversation, message, read mark and queued reply.
function startOver() {
  for (const e of entries.values()) if (e.li) e.li.remove();
  entries.clear();
  reads = {};
  try {
    localStorage.removeItem(readsKey());
  } catch {
    // denied: nothing was kept either
  }
  outbox.reset();
  nextCursor = null;
  loadingCursor = null;
  if (openId !== null) {
    openId = null;
    followed = null;
    loaded = false;
    pendingHistory = [];
    thread.reset();
    $('pane').hidden = true;
    $('pane-empty').hidden = false;
    $('conv-name').textContent = '';
    $('conv-sub').textContent = '';
    hide();
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  }
  setComposerEnabled(false);
  renderList();
  showResetNote($('reset-note'));
}

function frame(f) {
  switch (f.type) {
    case 'inbox': {
      const convs = Array.isArray(f.conversations) ? f.conversations : [];
      checkStore(f.store_id);
      if (f.cursor !== undefined && f.cursor !== null) {
        // A continuation: the page after the loaded ones, if still wanted.
        if (f.cursor !== loadingCursor) return;
        loadingCursor = null;
        for (const c of convs) update(c);
      } else {
        // A fresh first page: it replaces the list (the conversation on
        // screen stays). A conversation that ends before what the page holds
        // means a restored database: start over.
        if (convs.some((c) => entries.has(c.conversation_id) && (c.last_seq || 0) < entries.get(c.conversation_id).last_seq)) {
          startOver();
        }
        const fresh = new Set(convs.map((c) => c.conversation_id));
        for (const [id, e] of entries) {
          if (!fresh.has(id) && id !== openId) {
            if (e.li) e.li.remove();
            entries.delete(id);
          }
        }
        loadingCursor = null;
        for (const c of convs) update(c);
      }
      nextCursor = f.has_more && typeof f.next_cursor === 'string' && f.next_cursor ? f.next_cursor : null;
      $('inbox-loading').hidden = true;
      renderList();
      watchEnd();
      if (openId === null) {
        const fromHash = conversationFromHash();
        if (fromHash !== null && entries.has(fromHash)) show(fromHash, false);
      } else {
        follow();
      }
      return;
    }
    case 'inbox_update':
      if (f.conversation) {
        update(f.conversation);
        renderList();
      }
      return;
    case 'message':
    case undefined:
      if (typeof f.message !== 'string' || typeof f.conversation_id !== 'number') return;
      if (me && f.sender_id === me.id) outbox.stored(f.client_msg_id);
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
      if (loaded && typeof f.last_seq === 'number' && f.last_seq < thread.maxSeq) {
        startOver(); // the conversation ends before what is shown: a restored database
        return;
      }
      if (!loaded) {
        if (f.last_seq > 0) requestHistory(openId, { before_seq: f.last_seq + 1, limit: PAGE }, 'latest');
        else {
          loaded = true;
          thread.refresh();
        }
      } else {
        requestHistory(openId, { after_seq: thread.maxSeq, limit: 100 }, 'after');
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
      outbox.stored(f.client_msg_id);
      return;
    case 'auth':
      return; // a fresh token was accepted
    case 'error':
      if (f.client_msg_id && outbox.refused(f)) return;
      if (f.code === 'token_expired') return; // the close (4401) follows and says so
      if (loadingCursor !== null && !f.client_msg_id && !f.conversation_id) loadingCursor = null; // a page request was refused
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
  const more = nextCursor !== null ? '+' : '';
  $('inbox-count').textContent = entries.size === 1 && !more ? '1 conversation' : `${entries.size}${more} conversations`;
  $('inbox-more').hidden = nextCursor === null;
  renderTitle();
}

// Infinite scroll: the next page is asked for when the end of the list
// (#inbox-more, shown while there are more) scrolls into view.
const endObserver = new IntersectionObserver(
  (records) => {
    if (records.some((r) => r.isIntersecting)) loadMore();
  },
  { root: document.querySelector('.inbox-pane'), rootMargin: '0px 0px 200px 0px' },
);

// watchEnd observes the end of the list again, which reports at once
// whether it is in view (a page that did not fill the pane asks for the next).
function watchEnd() {
  endObserver.unobserve($('inbox-more'));
  if (nextCursor !== null) endObserver.observe($('inbox-more'));
}

function loadMore() {
  if (nextCursor === null || loadingCursor !== null) return;
  if (conn.send({ type: 'inbox', cursor: nextCursor, limit: INBOX_PAGE })) loadingCursor = nextCursor;
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
  // Replies to this conversation not stored yet, in the order written.
  for (const item of outbox.failedItems(id)) {
    thread.addPending(item.cmid, item.text);
    thread.setPending(item.cmid, 'failed', { text: errorText(item.frame, maxChars) });
  }
  for (const item of outbox.items(id)) {
    thread.addPending(item.cmid, item.text);
    thread.setPending(item.cmid, item.state === 'new' ? 'sending' : item.state);
  }
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
  thread.addPending(cmid, text);
  outbox.push(openId, text, cmid); // sent now, or after the replies before it, or after the next welcome
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
  if (s && s.dev) {
    $('dev-banner').hidden = false;
    $('signout').hidden = false;
  }
});
conn.start();
