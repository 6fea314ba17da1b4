// The visitor's chat: / and /chat/, and /embed/ (the widget's frame).
//
// Resume (docs/PROTOCOL.md, "Resuming after a reconnect"): on every welcome
// the page asks for the history after the last seq it shows (L); the first
// welcome loads the newest page instead. Live messages and history pages are
// merged by seq, so nothing is shown twice. What the visitor writes goes
// through the Outbox (outbox.js): in order, one at a time, sent again by
// itself (same client_msg_id, stored once) after a refusal that passes and
// after a reconnect; the page warns before a reload loses it.
//
// Store identity: the welcome names the server's store (store_id). When a
// reconnect's welcome names another store, or says the conversation ends
// before the newest message shown (a database restored from a backup), what
// the page shows belongs to a past that no longer exists: it is dropped, the
// page says so, and starts over.
//
// Availability (live.js): below the top bar, "We're online" while staff are
// available, else the operator's away message, from the availability frames
// (right after the welcome and at each change).
//
// Read receipts: while the page is visible (and, in the widget, its panel
// open) and shows messages, it tells the server how far the visitor has read
// ({"type":"read"} with the newest seq shown; at most once a second). Staff
// read marks come back as read frames by "staff": "Seen" under the visitor's
// last message they have read.
//
// The visitor's page (docs/PROTOCOL.md, "The visitor's page"): after every
// welcome, and whenever it changes, the page tells the server which page
// the visitor is on ({"type":"page","url","title"}), for staff to see. In
// the widget's frame that is the host page, which the widget's loader
// (widget.js, running on the host page) hands over by postMessage; the
// frame never guesses it (document.referrer). Elsewhere it is this page
// itself (its address without a token parameter). Staff see the browser
// too: the server takes the socket's User-Agent.
//
// Typing (live.js): while the visitor types, the page tells the server
// (at most once a second); when staff type, "Support is typing…" shows below
// the thread, until 5 s pass without a new typing frame or a staff message
// arrives.

import { Connection } from './connection.js';
import { Thread } from './thread.js';
import { Outbox } from './outbox.js';
import { TypingSender, TypingView, availabilityText } from './live.js';
import { TranscriptEmail } from './transcript.js';
import { AnonymousIdentity } from './anonymous.js';
import { $, el, chars, errorText, newClientMsgId, StatusView, fetchSession, autoGrow, showResetNote, rememberStore } from './ui.js';

const PAGE = 50;
const embedded = location.pathname.startsWith('/embed/');
const framed = window.parent !== window;

// In the widget's frame, the host page may hand over its token in the URL
// fragment (#token=…): fragments never reach a server or a Referer. It is
// honoured only inside a frame — frame-ancestors limits who can frame this
// page, and a token pushed through a top-level link would sign the reader in
// as someone else. The fragment is removed from the address at once.
// The widget also puts there the anonymous token it keeps for this visitor
// (anon=…) and its page's origin (host=…), where a new one goes back (see
// anonymous.js).
function fromFragment() {
  if (!embedded || !framed) return { token: '', anon: '', host: '' };
  const params = new URLSearchParams(location.hash.slice(1));
  const out = { token: params.get('token') || '', anon: params.get('anon') || '', host: params.get('host') || '' };
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return out;
}

const fragment = fromFragment();
let token = fragment.token;
const identity = new AnonymousIdentity({ embedded, hostOrigin: fragment.host, stored: fragment.anon });
let me = null;
let conversation = null;
let loaded = false; // has the newest page been shown?
let maxChars = 4000;
let pendingHistory = []; // requests awaiting their history frame, in order
// The seq a reconnect's catch-up asks the history after, kept (and moved
// along a catch-up of several pages) until the catch-up has its last page:
// a socket lost before that resumes from it again, not from a live message
// that arrived meanwhile above the gap (thread.maxSeq).
let resumeAfter = null;
let panelOpen = true; // embedded: is the widget's panel open?
let unread = 0; // staff replies that arrived while the page was hidden (or the panel closed)
const baseTitle = document.title;

// The page the visitor is on ({url, title}; null until known), and the one
// this socket reported.
let visitorPage = embedded && framed ? null : ownPage();
let pageSent = null;
const MAX_URL_BYTES = 2048;
const MAX_TITLE_BYTES = 300;
const utf8 = new TextEncoder();

// ownPage is this page as the visitor's page: its address without a token
// (a ?token= parameter signs in; it is nobody else's) and its own title.
function ownPage() {
  const u = new URL(location.href);
  u.searchParams.delete('token');
  return { url: u.href, title: baseTitle };
}

// cleanPage makes a reported page fit the server's rules (an absolute http
// or https URL of at most 2048 bytes; a title of at most 300 bytes, cut at a
// character), or returns null for one the server would refuse.
function cleanPage(url, title) {
  let u;
  try {
    u = new URL(String(url));
  } catch {
    return null;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || utf8.encode(u.href).length > MAX_URL_BYTES) return null;
  let t = String(title || '').replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  while (utf8.encode(t).length > MAX_TITLE_BYTES) t = Array.from(t).slice(0, -1).join('');
  return { url: u.href, title: t };
}

// reportPage tells the server the visitor's page, if this socket has not
// said it yet.
function reportPage() {
  if (!visitorPage || !me || me.is_admin) return;
  const p = cleanPage(visitorPage.url, visitorPage.title);
  if (!p || (pageSent && pageSent.url === p.url && pageSent.title === p.title)) return;
  if (conn.send({ type: 'page', url: p.url, title: p.title })) pageSent = p;
}

let readSent = 0; // the newest seq this page said (or the server confirmed) the visitor read
let readTimer = null;

// scheduleRead tells the server, within a second, how far the visitor has
// read (once for a burst of messages).
function scheduleRead() {
  if (readTimer !== null) return;
  readTimer = setTimeout(() => {
    readTimer = null;
    sendRead();
  }, 1000);
}

function sendRead() {
  if (document.visibilityState !== 'visible' || (embedded && !panelOpen) || !loaded || conversation === null) return;
  const seq = thread.maxSeq;
  if (seq > readSent && conn.send({ type: 'read', conversation_id: conversation, seq })) readSent = seq;
}

function clearUnread() {
  unread = 0;
  document.title = baseTitle;
  if (embedded) tellHost({ type: 'grainchat:unread', count: 0 });
}
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && (!embedded || panelOpen)) {
    clearUnread();
    scheduleRead();
  }
});

if (embedded) {
  document.body.classList.add('embedded');
  $('close').hidden = !framed;
  $('close').addEventListener('click', () => tellHost({ type: 'grainchat:close' }));
  addEventListener('message', (ev) => {
    if (ev.source !== window.parent || !ev.data || typeof ev.data !== 'object') return;
    if (ev.data.type === 'grainchat:panel') {
      panelOpen = Boolean(ev.data.open);
      if (panelOpen) {
        clearUnread();
        scheduleRead();
        $('text').focus();
      }
    } else if (ev.data.type === 'grainchat:page' && typeof ev.data.url === 'string') {
      // The host page (from the widget's loader): where the visitor is.
      visitorPage = { url: ev.data.url, title: typeof ev.data.title === 'string' ? ev.data.title : '' };
      reportPage();
    } else if (ev.data.type === 'grainchat:token' && typeof ev.data.token === 'string' && ev.data.token) {
      // The host site's fresh token (GrainChat.setToken): kept for the
      // next connections, and given to the open socket in band. An
      // anonymous visitor who signed in: their conversation is merged into
      // theirs, and the page connects as them.
      const t = ev.data.token;
      if (identity.current) {
        identity.merge(t).then(() => {
          token = t;
          conn.switchUser(t);
        });
        return;
      }
      token = t;
      conn.setToken(token);
    }
  });
  addEventListener('hashchange', () => {
    const t = fromFragment().token;
    if (t && t !== token) {
      token = t;
      conn.setToken(t);
    }
  });
}

// tellHost posts to the page that frames the widget. The messages carry no
// secret (a count, a request to close), so any framer may read them; who can
// frame at all is decided by frame-ancestors.
function tellHost(msg) {
  if (framed) window.parent.postMessage(msg, '*');
}

const status = new StatusView({ pill: $('state'), banner: $('banner') });
const thread = new Thread({
  scroller: $('scroller'),
  list: $('messages'),
  empty: $('empty'),
  older: $('older'),
  viewer: 'visitor',
  onOlder: (beforeSeq) => requestHistory({ before_seq: beforeSeq, limit: PAGE }, 'older'),
  onRetry: (cmid) => outbox.retryNow(cmid),
  onDiscard: (cmid) => outbox.discard(cmid),
});

const typingView = new TypingView({ node: $('typing'), self: () => (me ? me.id : null) });
const typingSender = new TypingSender((f) => conn.send(f));

const outbox = new Outbox({
  send: (item) => conn.send({ message: item.text, client_msg_id: item.cmid }),
  onChange: (item, state, detail) => {
    if (state === 'done') return; // the thread settles it from the ack or the message
    thread.setPending(item.cmid, state, { code: detail.code, text: detail.frame && errorText(detail.frame, maxChars) });
  },
});

// Leaving the page (reload, close, another address) would lose what is not
// stored yet: the browser asks first.
addEventListener('beforeunload', (ev) => {
  if (outbox.hasUnsent() || input.value.trim()) {
    ev.preventDefault();
    ev.returnValue = '';
  }
});

// startOver drops everything shown: the server's store is not the one it
// came from. Messages still queued go to the visitor's (new) conversation.
function startOver() {
  thread.reset();
  readSent = 0;
  typingView.clear();
  loaded = false;
  pendingHistory = [];
  for (const item of outbox.items(null)) {
    thread.addPending(item.cmid, item.text);
    thread.setPending(item.cmid, 'waiting');
  }
  showResetNote($('reset-note'));
}

const conn = new Connection({
  token,
  onWelcome: welcome,
  onFrame: frame,
  onState: (state, detail) => {
    status.set(state, detail);
    // While the connection is down people can keep writing: messages wait
    // and go out after the next welcome.
    setComposerEnabled(state !== 'signed-out' && state !== 'stopped' && me !== null && !me.is_admin);
  },
  onDown: () => {
    readSent = 0; // a read frame in flight may be lost: the next welcome says it again
    pendingHistory = [];
    thread.loadingOlder = false;
    thread.refresh();
    outbox.down();
  },
});
status.retryNow = () => conn.reconnectNow();
const transcriptEmail = new TranscriptEmail((f) => conn.send(f));

function requestHistory(req, kind) {
  if (!conn.send({ type: 'history', ...req })) return false;
  pendingHistory.push(kind);
  return true;
}

function welcome(w) {
  me = w.user;
  thread.me = me;
  maxChars = w.max_message_chars || maxChars;
  $('whoami').textContent = me.is_admin ? `Signed in as ${me.name} (staff)` : `Signed in as ${me.name}`;
  if (me.is_admin) {
    conversation = null;
    thread.reset();
    $('banner').hidden = false;
    $('banner').replaceChildren(
      el('span', { text: `${me.name}, you are signed in as staff: visitors chat here, staff answer in the inbox. ` }),
      el('a', { href: '/admin/', target: '_top', text: 'Open the inbox' }),
    );
    setComposerEnabled(false);
    return;
  }
  if (rememberStore(w.store_id) === 'changed') {
    startOver();
  } else if (conversation !== null && conversation !== w.conversation_id) {
    thread.reset(); // another person
    readSent = 0;
    loaded = false;
  } else if (loaded && typeof w.last_seq === 'number' && w.last_seq < thread.maxSeq) {
    startOver(); // the conversation ends before what is shown: a restored database
  }
  conversation = w.conversation_id;
  transcriptEmail.welcome(w);
  typingView.show(conversation);
  setStatus(w.status);
  pendingHistory = [];
  if (!loaded) {
    resumeAfter = null;
    // The newest page (live messages that arrived meanwhile merge by seq).
    if (w.last_seq > 0) requestHistory({ before_seq: w.last_seq + 1, limit: PAGE }, 'latest');
    else {
      loaded = true;
      thread.refresh();
    }
  } else {
    resumeAfter = resumeAfter !== null ? Math.min(resumeAfter, thread.maxSeq) : thread.maxSeq;
    requestHistory({ after_seq: resumeAfter, limit: 100 }, 'after');
  }
  scheduleRead();
  outbox.up();
  setComposerEnabled(true);
  pageSent = null; // a new socket: it reports the page again
  reportPage();
}

function frame(f) {
  switch (f.type) {
    case 'message':
    case undefined:
      if (f.conversation_id !== conversation || typeof f.message !== 'string') return;
      if (me && f.sender_id === me.id) outbox.stored(f.client_msg_id);
      typingView.message(f);
      const added = thread.add(f) > 0;
      if (added) scheduleRead();
      if (added && f.sender_is_admin && (document.hidden || (embedded && !panelOpen))) {
        unread++;
        if (embedded) tellHost({ type: 'grainchat:unread', count: unread });
        document.title = `(${unread}) ${baseTitle}`;
      }
      return;
    case 'history': {
      const kind = pendingHistory.shift();
      if (f.conversation_id !== conversation) return;
      const msgs = Array.isArray(f.messages) ? f.messages : [];
      if (kind === 'latest') {
        loaded = true;
        thread.setLatest(msgs, f.has_more);
      } else if (kind === 'older') {
        thread.addOlder(msgs, f.has_more);
      } else {
        thread.add(...msgs);
        if (f.has_more && msgs.length) {
          resumeAfter = msgs[msgs.length - 1].seq;
          requestHistory({ after_seq: resumeAfter, limit: 100 }, 'after');
        } else {
          resumeAfter = null; // caught up
        }
      }
      // Status events only: anything else (the server sends visitors none)
      // is not the visitor's to see.
      if (Array.isArray(f.events)) thread.addEvents(...f.events.filter((ev) => ev && ev.kind === 'status'));
      scheduleRead();
      return;
    }
    case 'event':
      // The conversation's status changed (resolved by staff, reopened by
      // writing again): a line in the thread, and the note above the
      // composer.
      if (f.conversation_id !== conversation || !f.event || f.event.kind !== 'status') return;
      thread.addEvents(f.event);
      setStatus(f.event.status);
      return;
    case 'ack':
      thread.ack(f);
      outbox.stored(f.client_msg_id);
      return;
    case 'typing':
      // Staff type in this conversation ("Support", or their name when the
      // server shows staff names).
      if (f.conversation_id === conversation) typingView.typing(f);
      return;
    case 'read':
      // A read receipt (staff have read up to seq), or the answer to this
      // page's own read frame (read_seq).
      if (f.conversation_id !== conversation) return;
      if (f.by === 'staff') thread.setSeen(f.seq);
      if (typeof f.read_seq === 'number') readSent = Math.max(readSent, f.read_seq);
      return;
    case 'availability': {
      const a = $('availability');
      const text = availabilityText(f);
      if (a.textContent !== text) a.textContent = text;
      a.dataset.online = String(f.staff_online === true);
      a.hidden = false;
      return;
    }
    case 'auth':
      return; // the fresh token was accepted
    case 'transcript_email':
      transcriptEmail.answer(f);
      return;
    case 'error':
      if (f.client_msg_id && outbox.refused(f)) return;
      if (transcriptEmail.refused(f)) return;
      if (f.code === 'token_expired') return; // the close (4401) follows and says so
      if (!f.client_msg_id && f.conversation_id && pendingHistory.length) {
        pendingHistory.shift(); // a history request was refused
        thread.loadingOlder = false;
        thread.refresh();
      }
      notice(errorText(f, maxChars));
      return;
    default:
      return; // v1 clients ignore frame types they do not know
  }
}

// setStatus shows, while the conversation is resolved, that writing again
// reopens it.
function setStatus(status) {
  $('resolved-note').hidden = status !== 'resolved';
}

let noticeTimer = null;
function notice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 8000);
}

// The composer.
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
input.addEventListener('input', () => {
  updateCounter();
  if (me && !me.is_admin) typingSender.input(null, input.value);
});

function submit() {
  const text = input.value.trim();
  if (!text || !me || me.is_admin) return;
  const n = chars(text);
  if (n > maxChars) {
    notice(`Message too long: ${n} characters, the limit is ${maxChars}. Shorten it and send again.`);
    return;
  }
  const cmid = newClientMsgId();
  thread.addPending(cmid, text);
  outbox.push(null, text, cmid); // sent now, or after the messages before it, or after the next welcome
  typingSender.sent();
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

// The widget's host page learns that the chat loaded (it shows "Chat is
// unavailable" otherwise, e.g. when its site may not frame chatd) and only
// then posts to the frame.
tellHost({ type: 'grainchat:ready' });

// This page's own address changes (a fragment, history): the visitor's page
// changes with it.
if (!(embedded && framed)) {
  const again = () => {
    visitorPage = ownPage();
    reportPage();
  };
  addEventListener('hashchange', again);
  addEventListener('popstate', again);
}

const sessionInfo = fetchSession(token);
sessionInfo.then((s) => {
  if (s && s.dev && !embedded) {
    $('dev-banner').hidden = false;
    $('signout').hidden = false;
  }
});
if (token && !identity.stored) {
  conn.start(); // the host site's token: nothing to find out first
} else {
  // The token to connect with: the host site's (after merging an anonymous
  // conversation into it), the cookie's, or an anonymous visitor's.
  token = await identity.resolve(token, await sessionInfo);
  conn.switchUser(token);
}
