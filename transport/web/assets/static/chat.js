// The visitor's chat: / and /chat/, and /embed/ (the widget's frame).
//
// Resume (docs/PROTOCOL.md, "Resuming after a reconnect"): on every welcome
// the page asks for the history after the last seq it shows (L); the first
// welcome loads the newest page instead. Live messages and history pages are
// merged by seq, so nothing is shown twice, and messages not yet acknowledged
// are sent again with the same client_msg_id, which the server stores once.

import { Connection } from './connection.js';
import { Thread } from './thread.js';
import { $, el, chars, errorText, newClientMsgId, StatusView, fetchSession, autoGrow } from './ui.js';

const PAGE = 50;
const embedded = location.pathname.startsWith('/embed/');
const framed = window.parent !== window;

// In the widget's frame, the host page may hand over its token in the URL
// fragment (#token=…): fragments never reach a server or a Referer. It is
// honoured only inside a frame — frame-ancestors limits who can frame this
// page, and a token pushed through a top-level link would sign the reader in
// as someone else. The fragment is removed from the address at once.
function tokenFromFragment() {
  if (!embedded || !framed) return '';
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get('token') || '';
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

let token = tokenFromFragment();
let me = null;
let conversation = null;
let loaded = false; // has the newest page been shown?
let maxChars = 4000;
let pendingHistory = []; // requests awaiting their history frame, in order
let panelOpen = true; // embedded: is the widget's panel open?
let unread = 0; // staff replies that arrived while the page was hidden (or the panel closed)
const baseTitle = document.title;

function clearUnread() {
  unread = 0;
  document.title = baseTitle;
  if (embedded) tellHost({ type: 'grainchat:unread', count: 0 });
}
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && (!embedded || panelOpen)) clearUnread();
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
        $('text').focus();
      }
    }
  });
  addEventListener('hashchange', () => {
    const t = tokenFromFragment();
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
  onRetry: (cmid, text) => conn.send({ message: text, client_msg_id: cmid }),
});

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
    pendingHistory = [];
    thread.loadingOlder = false;
    thread.refresh();
  },
});
status.retryNow = () => conn.reconnectNow();

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
  if (conversation !== null && conversation !== w.conversation_id) {
    thread.reset(); // another person
    loaded = false;
  }
  conversation = w.conversation_id;
  pendingHistory = [];
  if (!loaded) {
    // The newest page (live messages that arrived meanwhile merge by seq).
    if (w.last_seq > 0) requestHistory({ before_seq: w.last_seq + 1, limit: PAGE }, 'latest');
    else {
      loaded = true;
      thread.refresh();
    }
  } else {
    requestHistory({ after_seq: thread.maxSeq, limit: 100 }, 'after');
  }
  for (const { cmid, text } of thread.unsent()) conn.send({ message: text, client_msg_id: cmid });
  setComposerEnabled(true);
}

function frame(f) {
  switch (f.type) {
    case 'message':
    case undefined:
      if (f.conversation_id !== conversation || typeof f.message !== 'string') return;
      if (thread.add(f) && f.sender_is_admin && (document.hidden || (embedded && !panelOpen))) {
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
        if (f.has_more && msgs.length) requestHistory({ after_seq: msgs[msgs.length - 1].seq, limit: 100 }, 'after');
      }
      return;
    }
    case 'ack':
      thread.ack(f);
      return;
    case 'error':
      if (f.client_msg_id && thread.fail(f.client_msg_id, errorText(f, maxChars), retryable(f.code))) return;
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
input.addEventListener('input', updateCounter);

function submit() {
  const text = input.value.trim();
  if (!text || !me || me.is_admin) return;
  const n = chars(text);
  if (n > maxChars) {
    notice(`Message too long: ${n} characters, the limit is ${maxChars}. Shorten it and send again.`);
    return;
  }
  const cmid = newClientMsgId();
  const sent = conn.send({ message: text, client_msg_id: cmid }); // if not: sent after the next welcome
  thread.addPending(cmid, text, !sent);
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

fetchSession(token).then((s) => {
  if (s && s.dev && !embedded) $('dev-banner').hidden = false;
});
conn.start();
