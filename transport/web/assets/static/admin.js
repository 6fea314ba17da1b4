// The staff inbox: /admin/.
//
// The inbox frame lists every conversation; inbox_update frames keep it
// current and reorder it (most recent activity first). Staff sessions receive
// every conversation's messages; the one on screen is also followed through
// its grain with `open`, whose `opened` answer says from which seq live
// delivery continues: the page loads the newest page before it (first time)
// or the history after the last seq it shows (after a reconnect).
//
// Unread and read marks (docs/PROTOCOL.md, "Support desk"): each staff
// member has a read mark per conversation, kept by the server and the same
// on all their tabs and devices. The page moves it ({"type":"read"}) when a
// conversation's newest messages are on screen in a visible tab; every
// socket of that staff member then gets a read frame. Inbox pages say each
// conversation's read_seq and unread; a live message from someone else
// after the mark counts as unread.
//
// Views: the tabs filter by status (open by default, pending, resolved,
// all), the select by assignee (anyone, mine, unassigned, a colleague), the
// search box by words in messages and visitor names. Each view is asked
// from the server ({"type":"inbox","status","assignee","q"}), which answers
// a page with the view's counts. Events (a status or assignee change, by
// anyone) move a listed conversation out of the view at once, and ask the
// view again (debounced) for its counts and for conversations that enter it.
//
// The desk: the conversation's header shows its status and assignee, and
// claims, assigns, resolves, reopens or marks it pending. The thread shows
// each change as a line (events). A reply carries based_on_seq: the newest
// message on screen when the agent started writing it; when the server
// refuses it as stale (someone wrote meanwhile), the reply stays on screen
// with "Send anyway" (force) and "Edit" (back in the composer).
//
// Canned replies: see canned.js.
//
// Live signals (live.js): while the agent types a reply, the page tells the
// server (at most once a second); below the thread of the conversation on
// screen, "Carl is typing…" (the visitor) or "Ann is typing…" (a colleague
// who has it open) shows until 5 s pass without a new typing frame from
// them, or their message arrives. The header says who else has the
// conversation open ("Ann is viewing"), from the viewers frames the server
// sends on open and at every change; the list is the followed
// conversation's, forgotten on leave.
//
// Presence (live.js): each inbox entry shows a green dot while its visitor is
// online, and the conversation's header "Online" or "Last seen 5 min ago"
// (the exact time in its title, the words kept fresh), from the inbox
// entries' visitor and the presence frames. The top bar's toggle sets the
// agent away ("Away") or back ("Available"), as the server's away answer
// says; the page sets the agent away after 10 minutes without input on it,
// and back at the next input when it did so itself.
//
// Internal notes: the composer's Note toggle makes it write a note
// ({"type":"note"}: staff only, never the visitor) instead of a reply; notes
// show in the thread as yellow blocks, "Note by Ann", from the live event
// frames, the changed answer and history pages. No typing frame goes while
// writing a note.
//
// The visitor panel (visitor.js): beside the conversation on screen (a
// drawer from the header's Visitor button on narrower screens), who the
// visitor is (name, email, the host site's attributes), whether they are
// online, the page of the host site they are on and their browser; the
// visitor frames that follow an open and every page the visitor reports
// keep it live. All of it is shown as text.
//
// Read receipts: the visitor's page says how far the visitor has read; for
// the conversation on screen (opened), "Seen" shows under the last staff
// reply up to there.
//
// Notifications (notify.js): the title counts the unread messages; a beep
// (the top bar's sound toggle, off by default, remembered) and a desktop
// notification ("Enable notifications", for the agent's own and unassigned
// conversations) tell of a new visitor message, unless its conversation is
// on screen in a visible tab.
//
// Paging: the inbox frame holds the first page (most recent activity first)
// and, when there are more, has_more and next_cursor; the page asks for the
// next page ({"type":"inbox","cursor":…}) when the end of the list scrolls
// into view. An inbox frame that echoes a cursor continues the list; one
// without is a fresh first page (after a reconnect) and replaces it. Live
// updates add conversations that no page has brought yet at the top; every
// conversation is listed once (the entry with the newest last_seq wins).
//
// Transcript: the header's "Download transcript" fetches the conversation's
// transcript (text by default, or JSON; internal notes only when "With
// internal notes" is ticked, which is off by default and again for each
// conversation opened: a transcript may be forwarded to the visitor) and
// saves it as conversation-N.txt or .json. The REST API takes only a bearer
// token and the page's is in its HttpOnly cookie: the page asks
// /admin/conversations/N/transcript, which passes the cookie's token to the
// API (web.CookieBearer). An error answer or a failure shows in the notice;
// a download that does not start within 30 s, or end within 2 minutes, is
// given up.
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
import { CannedReplies } from './canned.js';
import { TypingSender, TypingView, viewingText, presenceText, AwayControl } from './live.js';
import { VisitorPanel } from './visitor.js';
import { notifyDecision, Beeper, notificationPermission, showNotification } from './notify.js';
import { $, el, chars, errorText, fullTime, listTime, newClientMsgId, StatusView, fetchSession, autoGrow, showResetNote, rememberStore } from './ui.js';

const PAGE = 50;
const INBOX_PAGE = 50;

let me = null;
let maxChars = 4000;
const entries = new Map(); // conversation id -> entry
let openId = null; // the conversation on screen
let followed = null; // the conversation `open`ed on the current socket
let loaded = false; // has the conversation on screen had its first page?
// The newest seq the conversation on screen showed when the socket went
// down: the next `opened` asks for the history after it. Not thread.maxSeq
// then: the new socket gets every conversation's messages live from its
// welcome on, so one stored meanwhile (a visitor's queued message, sent again
// on their reconnect) may show before `opened`, above a gap. It is kept (and
// moved along a catch-up of several pages) until the catch-up has its last
// page: a socket lost before that resumes from it too, not from a live
// message above the gap.
let resumeAfter = null;
let pendingHistory = []; // { conv, kind } awaiting their history frame, in order
let nextCursor = null; // the inbox page after the loaded ones, when has_more
let loadingCursor = null; // the cursor asked for, until its page arrives
let session = null; // GET /session: who the page's cookie names
let staff = []; // staff users [{id, external_id, name}], for the assignee menus
let view = loadView(); // the inbox view shown {status, assignee, q}
let viewsAsked = 0; // view requests (fresh pages) not answered yet
let counts = null; // the view counts of the last page
let refreshTimer = null;
let noteMode = false; // does the composer write an internal note?
let pendingNote = null; // { conv, text }: a note sent, not answered yet
let basedOn = null; // the newest seq on screen when the reply in the composer was begun
const viewers = new Map(); // conversation id -> the staff [{id, name}] who have it open (the followed one)
const visitorSeen = new Map(); // conversation id -> how far its visitor has read (read receipts)
const online = new Set(); // conversations whose visitor is online (from presence frames)
const visitorPanel = new VisitorPanel({ panel: $('visitor-panel'), details: $('visitor-details') });

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

const typingView = new TypingView({ node: $('typing'), self: () => (me ? me.id : null) });
const typingSender = new TypingSender((f) => conn.send(f));

const outbox = new Outbox({
  send: (item) => {
    const post = { message: item.text, conversation_id: item.conv, client_msg_id: item.cmid };
    if (typeof item.basedOn === 'number') post.based_on_seq = item.basedOn;
    if (item.force) post.force = true;
    return conn.send(post);
  },
  onChange: (item, state, detail) => {
    if (state === 'done' || item.conv !== openId) return; // the thread settles it from the ack or the message
    if (state === 'failed' && detail.frame && detail.frame.code === 'stale_reply') {
      showStale(item);
      return;
    }
    thread.setPending(item.cmid, state, { code: detail.code, text: detail.frame && errorText(detail.frame, maxChars) });
  },
});

// showStale shows a reply the stale-reply guard refused, with its choices.
function showStale(item) {
  thread.setPending(item.cmid, 'stale', {
    onForce: () => {
      // The same client_msg_id: nothing was stored under it.
      outbox.discard(item.cmid);
      thread.setPending(item.cmid, 'sending');
      outbox.push(item.conv, item.text, item.cmid, { force: true });
    },
    onEdit: () => {
      outbox.discard(item.cmid);
      thread.removePending(item.cmid);
      input.value = input.value.trim() ? `${item.text}\n${input.value}` : item.text;
      basedOn = thread.maxSeq;
      fit();
      updateCounter();
      input.focus();
    },
  });
}

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
    if (openId !== null && loaded && resumeAfter === null) resumeAfter = thread.maxSeq;
    away.down();
    followed = null;
    viewers.clear(); // the next socket opens the conversation again, and is told
    renderViewers();
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

// markRead moves the read mark of the conversation on screen to its
// newest message, when the tab is visible.
function markRead(e) {
  if (!e || e.id !== openId || document.visibilityState !== 'visible') return;
  const seq = Math.max(e.last_seq, thread.maxSeq);
  if (seq > e.read_seq && conn.send({ type: 'read', conversation_id: e.id, seq })) e.read_seq = seq;
  if (e.unread !== 0) {
    e.unread = 0;
    renderEntry(e);
    renderTitle();
  }
}

// readMarked takes a read frame: this staff member's mark moved (on this
// or another of their sockets).
function readMarked(f) {
  const e = entries.get(f.conversation_id);
  if (!e || typeof f.read_seq !== 'number') return;
  e.read_seq = Math.max(e.read_seq, f.read_seq);
  const unread = e.read_seq >= e.last_seq ? 0 : Math.min(e.unread, e.last_seq - e.read_seq);
  if (unread !== e.unread) {
    e.unread = unread;
    renderEntry(e);
    renderTitle();
  }
}

document.addEventListener('visibilitychange', () => {
  if (openId !== null) markRead(entries.get(openId));
});

// visitorRead takes a read receipt: the visitor has read up to seq; "Seen"
// shows under the last staff reply up to there.
function visitorRead(f) {
  if (typeof f.conversation_id !== 'number' || typeof f.seq !== 'number') return;
  const seq = Math.max(f.seq, visitorSeen.get(f.conversation_id) || 0);
  visitorSeen.set(f.conversation_id, seq);
  if (f.conversation_id === openId) thread.setSeen(seq);
}

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
  checkStore(w.store_id);
  // The server tells this socket who is online now; the inbox pages say
  // the others' last-seen times.
  online.clear();
  away.up();
  outbox.up();
  viewsAsked = 0; // answers to the last socket's requests will not come
  conn.send({ type: 'staff' });
  canned.refresh(true);
  // The inbox frame (every conversation) follows; the page then asks for
  // its view.
}

// The store the page's state (and its queued replies) come from. Not per
// user: a user's id is itself one of the store's ids.
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
  visitorSeen.clear();
  outbox.reset();
  typingView.clear();
  viewers.clear();
  nextCursor = null;
  loadingCursor = null;
  resumeAfter = null;
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
    visitorPanel.forget();
    showVisitorDrawer(false);
    typingView.show(null);
    renderPresence();
    renderViewers();
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
        // A fresh first page. One of another view than the page shows (the
        // server's first page lists every conversation; an answer to a view
        // since left) is not shown: the page asks for its own.
        if (viewsAsked > 0) viewsAsked--;
        if (!sameView(f.view)) {
          if (viewsAsked === 0) askView();
          return;
        }
        if (f.counts && typeof f.counts === 'object') counts = f.counts;
        // It replaces the list (the conversation on screen stays). A
        // conversation that ends before what the page holds means a
        // restored database: start over.
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
        for (const c of convs) update(c, true);
        $('inbox-loading').hidden = true;
      }
      nextCursor = f.has_more && typeof f.next_cursor === 'string' && f.next_cursor ? f.next_cursor : null;
      renderViews();
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
    case 'inbox_update': {
      const c = f.conversation;
      if (!c || typeof c.conversation_id !== 'number') return;
      if (!entries.has(c.conversation_id)) {
        // A conversation the page does not list: listed when it belongs to
        // the view (a search view waits for its next page: the server
        // matches the words). A first message is a new conversation: open,
        // unassigned.
        if (view.q || !matchesView(c)) return;
        if (c.last_seq === 1 && counts && counts.open) {
          counts.open.all++;
          counts.open.unassigned++;
          renderViews();
        }
      }
      update(c);
      renderList();
      return;
    }
    case 'message':
    case undefined: {
      if (typeof f.message !== 'string' || typeof f.conversation_id !== 'number') return;
      const tell = notifyDecision({
        message: f,
        me,
        entry: entries.get(f.conversation_id) || null,
        openId,
        visible: document.visibilityState === 'visible',
      });
      if (tell.sound) beeper.beep();
      if (tell.desktop) {
        const conv = f.conversation_id;
        showNotification(f, () => {
          if (entries.has(conv)) show(conv, true);
        });
      }
      if (me && f.sender_id === me.id) outbox.stored(f.client_msg_id);
      typingView.message(f);
      // A conversation the page does not list comes in with its
      // inbox_update (which says its status and assignee).
      if (entries.has(f.conversation_id)) {
        update({
          conversation_id: f.conversation_id,
          last_seq: f.seq,
          last_message_at: f.created_at,
          last_message: f,
          user: f.sender_is_admin ? undefined : { id: f.sender_id, name: f.sender_name },
        });
        renderList();
      }
      if (f.conversation_id === openId) {
        thread.add(f);
        markRead(entries.get(openId));
      }
      return;
    }
    case 'event':
      if (typeof f.conversation_id === 'number' && f.event) changed(f.conversation_id, [f.event]);
      return;
    case 'changed':
      // The answer to this page's status or assign request.
      if (typeof f.conversation_id === 'number') changed(f.conversation_id, Array.isArray(f.events) ? f.events : []);
      return;
    case 'read':
      // A read receipt (by the visitor, for a conversation this page
      // opened), or this agent's own read mark (read_seq).
      if (f.by === 'visitor') visitorRead(f);
      else readMarked(f);
      return;
    case 'staff':
      staff = Array.isArray(f.staff) ? f.staff : [];
      renderAssigneeMenus();
      return;
    case 'canned':
      canned.frame(f);
      return;
    case 'typing':
      // The visitor or a colleague types in a conversation this page opened.
      typingView.typing(f);
      return;
    case 'presence':
      presence(f);
      return;
    case 'visitor':
      // Who the visitor of a conversation this page opened is, and the
      // page they are on: after the open, and at each page they report.
      visitorPanel.frame(f);
      return;
    case 'away':
      away.answer(f);
      return;
    case 'viewers':
      // Who has the followed conversation open (this agent included).
      if (f.conversation_id !== followed || !Array.isArray(f.staff)) return;
      viewers.set(f.conversation_id, f.staff);
      renderViewers();
      return;
    case 'opened':
      if (f.conversation_id !== openId || followed !== openId) return;
      if (loaded && typeof f.last_seq === 'number' && f.last_seq < thread.maxSeq) {
        startOver(); // the conversation ends before what is shown: a restored database
        return;
      }
      if (!loaded) {
        resumeAfter = null;
        if (f.last_seq > 0) requestHistory(openId, { before_seq: f.last_seq + 1, limit: PAGE }, 'latest');
        else {
          loaded = true;
          thread.refresh();
        }
      } else {
        resumeAfter = resumeAfter !== null ? Math.min(resumeAfter, thread.maxSeq) : thread.maxSeq;
        requestHistory(openId, { after_seq: resumeAfter, limit: 100 }, 'after');
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
          resumeAfter = msgs[msgs.length - 1].seq;
          requestHistory(openId, { after_seq: resumeAfter, limit: 100 }, 'after');
        } else {
          resumeAfter = null; // caught up
        }
      }
      if (Array.isArray(f.events)) thread.addEvents(...f.events);
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
      if (!f.client_msg_id && pendingNote && f.conversation_id === pendingNote.conv && f.code !== 'conversation_not_found') {
        // The note was refused: its text goes back to the composer.
        if (!input.value.trim() && openId === pendingNote.conv) {
          input.value = pendingNote.text;
          fit();
          updateCounter();
        }
        pendingNote = null;
        notice(`The note was not added. ${errorText(f, maxChars)}`);
        return;
      }
      if (f.code === 'token_expired') return; // the close (4401) follows and says so
      if (canned.error(f)) return;
      if (loadingCursor !== null && !f.client_msg_id && !f.conversation_id) loadingCursor = null; // a page request was refused
      if (viewsAsked > 0 && !f.client_msg_id && !f.conversation_id) {
        // A view request was refused (a colleague who is not staff any more).
        viewsAsked--;
        $('inbox-loading').hidden = true;
      }
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

// changed applies a conversation's desk events (live, or the answer to
// this page's own request): the thread shows them, the entry takes the new
// status or assignee (leaving the view when it no longer belongs), and the
// view is asked again for its counts and for conversations entering it.
function changed(id, events) {
  if (id === openId) thread.addEvents(...events);
  if (pendingNote && pendingNote.conv === id && events.some((ev) => ev && ev.kind === 'note')) pendingNote = null;
  const e = entries.get(id);
  for (const ev of events) {
    if (!e) break;
    if (ev.kind === 'status' && ev.status) e.status = ev.status;
    if (ev.kind === 'assignee') e.assignee = ev.assignee || null;
  }
  if (e) renderEntry(e);
  if (id === openId) renderDesk();
  if (events.some((ev) => ev && ev.kind !== 'note')) refreshView();
  renderList();
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
// and counts what is new as unread. fromPage: an entry of an inbox page,
// with this staff member's read state.
function update(c, fromPage = false) {
  const id = c.conversation_id;
  let e = entries.get(id);
  const seq = c.last_seq || 0;
  const readSeq = typeof c.read_seq === 'number' ? c.read_seq : 0;
  if (!e) {
    e = { id, user: null, visitor: null, status: 'open', assignee: null, last_seq: 0, last_message_at: null, last_message: null, read_seq: readSeq, unread: 0, li: null };
    entries.set(id, e);
    e.unread = Math.max(0, seq - e.read_seq);
    if (c.last_message && c.last_message.sender_id === me.id && e.unread > 0) e.unread--;
  } else if (seq > e.last_seq) {
    let fresh = seq - Math.max(e.last_seq, e.read_seq);
    if (c.last_message && c.last_message.seq === seq && c.last_message.sender_id === me.id) fresh--;
    e.unread += Math.max(0, fresh);
  }
  if (c.user && (c.user.external_id !== undefined || !e.user)) e.user = c.user;
  if (typeof c.status === 'string' && c.status) e.status = c.status;
  if (c.assignee !== undefined) e.assignee = c.assignee;
  if (c.visitor && typeof c.visitor === 'object') {
    e.visitor = { online: c.visitor.online === true, last_seen_at: c.visitor.last_seen_at };
    if (e.visitor.online) online.add(id);
    else online.delete(id);
  } else if (!e.visitor && online.has(id)) {
    e.visitor = { online: true };
  }
  if (seq >= e.last_seq) {
    e.last_seq = seq;
    if (c.last_message_at) e.last_message_at = c.last_message_at;
    if (c.last_message) e.last_message = c.last_message;
  }
  if (fromPage && typeof c.unread === 'number') {
    // The server's count, unless this page already read further.
    e.read_seq = Math.max(e.read_seq, readSeq);
    e.unread = e.read_seq >= e.last_seq ? 0 : readSeq === e.read_seq ? c.unread : Math.min(c.unread, e.last_seq - e.read_seq);
  }
  if (id === openId) {
    markRead(e);
    renderDesk();
  }
  renderEntry(e);
}

// matchesView reports whether a conversation (an entry, or an inbox
// entry) belongs to the view's status and assignee. Search words are the
// server's to match.
function matchesView(c) {
  const status = c.status || 'open';
  if (view.status !== 'all' && status !== view.status) return false;
  const a = c.assignee || null;
  switch (view.assignee) {
    case 'any':
      return true;
    case 'none':
      return a === null;
    case 'me':
      return a !== null && me !== null && a.id === me.id;
    default:
      return a !== null && a.external_id === view.assignee;
  }
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
  const isOnline = !!(e.visitor && e.visitor.online);
  if (isOnline) avatar.append(el('span', { class: 'presence-dot', title: 'Online' }));
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
      el(
        'span',
        { class: 'conv-desk' },
        el('span', { class: 'conv-status', dataset: { status: e.status }, text: statusLabel(e.status) }),
        el('span', { class: 'conv-assignee', text: e.assignee ? `→ ${assigneeName(e.assignee)}` : 'Unassigned' }),
      ),
    ),
  );
  e.button.classList.toggle('unread', e.unread > 0);
  e.button.classList.toggle('active', e.id === openId);
  if (e.id === openId) e.button.setAttribute('aria-current', 'true');
  else e.button.removeAttribute('aria-current');
  e.button.setAttribute('aria-label', `${name}${isOnline ? ', online' : ''}${e.unread ? `, ${e.unread} unread` : ''}: ${previewOf(e)}`);
}

const STATUS_LABELS = { open: 'Open', pending: 'Pending', resolved: 'Resolved' };

function statusLabel(status) {
  return STATUS_LABELS[status] || status;
}

function assigneeName(a) {
  return me !== null && a.id === me.id ? 'you' : a.name || a.external_id;
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
  const listed = [];
  for (const [id, e] of entries) {
    if (matchesView(e)) listed.push(e);
    else if (e.li) e.li.remove();
    if (!matchesView(e) && id !== openId) entries.delete(id); // left the view
  }
  listed.sort(byActivity);
  let expected = list.firstElementChild;
  for (const e of listed) {
    if (e.li !== expected) list.insertBefore(e.li, expected);
    else expected = expected.nextElementSibling;
  }
  const n = listed.length;
  $('inbox-empty').hidden = n > 0 || !$('inbox-loading').hidden;
  $('inbox-empty').textContent = emptyText();
  const more = nextCursor !== null ? '+' : '';
  $('inbox-count').textContent = n === 1 && !more ? '1 conversation' : `${n}${more} conversations`;
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

// --- views ----------------------------------------------------------------

const VIEW_KEY = 'grainchat.inbox.view';
const STATUSES = ['open', 'pending', 'resolved', 'all'];

// loadView is the view this browser showed last (open, anyone, no search
// by default).
function loadView() {
  const v = { status: 'open', assignee: 'any', q: '' };
  try {
    const saved = JSON.parse(localStorage.getItem(VIEW_KEY) || 'null');
    if (saved && STATUSES.includes(saved.status)) v.status = saved.status;
    if (saved && typeof saved.assignee === 'string' && saved.assignee) v.assignee = saved.assignee;
  } catch {
    // denied or garbled: the default view
  }
  return v;
}

function saveView() {
  try {
    localStorage.setItem(VIEW_KEY, JSON.stringify({ status: view.status, assignee: view.assignee }));
  } catch {
    // denied: the view is not remembered
  }
}

// sameView reports whether an inbox frame's view is the one on screen.
function sameView(v) {
  return !!v && (v.status || 'all') === view.status && (v.assignee || 'any') === view.assignee && (v.q || '') === view.q;
}

// askView asks the server for the first page of the view on screen (as
// long as the list already is, to keep what was scrolled to).
function askView() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  const limit = Math.min(200, Math.max(INBOX_PAGE, $('inbox').childElementCount));
  const req = { type: 'inbox', status: view.status, assignee: view.assignee, limit };
  if (view.q) req.q = view.q;
  if (conn.send(req)) viewsAsked++;
}

// refreshView asks the view again soon (once for a burst of events).
function refreshView() {
  if (refreshTimer === null) refreshTimer = setTimeout(askView, 400);
}

// setView shows another view: the list empties until its page arrives.
function setView(change) {
  Object.assign(view, change);
  saveView();
  for (const [id, e] of entries) {
    if (id !== openId) {
      if (e.li) e.li.remove();
      entries.delete(id);
    }
  }
  nextCursor = null;
  loadingCursor = null;
  $('inbox-loading').hidden = false;
  renderViews();
  renderList();
  watchEnd();
  askView();
}

function emptyText() {
  if (view.q) return 'No conversation matches this search.';
  const which = { open: 'open ', pending: 'pending ', resolved: 'resolved ', all: '' }[view.status];
  if (view.assignee === 'me') return `No ${which}conversations assigned to you.`;
  if (view.assignee === 'none') return `No unassigned ${which}conversations.`;
  if (view.assignee !== 'any') return `No ${which}conversations assigned to this colleague.`;
  if (view.status === 'all' || view.status === 'open') {
    return `No ${which}conversations. They appear here, newest activity first, as soon as a visitor writes.`;
  }
  return `No ${which}conversations.`;
}

// countOf is how many conversations of status the assignee filter keeps
// (null when the counts do not say: a colleague's, or none yet).
function countOf(status) {
  if (!counts) return null;
  const pick = (c) => {
    if (!c) return 0;
    if (view.assignee === 'any') return c.all || 0;
    if (view.assignee === 'me') return c.mine || 0;
    if (view.assignee === 'none') return c.unassigned || 0;
    return null;
  };
  if (status !== 'all') return pick(counts[status]);
  let total = 0;
  for (const st of ['open', 'pending', 'resolved']) {
    const n = pick(counts[st]);
    if (n === null) return null;
    total += n;
  }
  return total;
}

function renderViews() {
  for (const b of $('view-status').querySelectorAll('button[data-status]')) {
    const st = b.dataset.status;
    b.setAttribute('aria-pressed', String(st === view.status));
    const n = countOf(st);
    b.querySelector('.count').textContent = n === null ? '' : String(n);
  }
  renderAssigneeMenus();
  if (document.activeElement !== $('view-q')) $('view-q').value = view.q;
}

// renderAssigneeMenus fills the view's assignee filter and the
// conversation's assignee select with the staff list.
function renderAssigneeMenus() {
  const sel = $('view-assignee');
  const status = view.status === 'all' ? null : counts && counts[view.status];
  const label = (text, n) => (typeof n === 'number' ? `${text} (${n})` : text);
  const options = [
    el('option', { value: 'any', text: label('Anyone', status ? status.all : undefined) }),
    el('option', { value: 'me', text: label('Mine', status ? status.mine : undefined) }),
    el('option', { value: 'none', text: label('Unassigned', status ? status.unassigned : undefined) }),
  ];
  const known = new Set(['any', 'me', 'none']);
  for (const u of staff) {
    if (me && u.id === me.id) continue;
    options.push(el('option', { value: u.external_id, text: u.name }));
    known.add(u.external_id);
  }
  if (!known.has(view.assignee)) options.push(el('option', { value: view.assignee, text: view.assignee }));
  sel.replaceChildren(...options);
  sel.value = view.assignee;
  renderDesk();
}

$('view-status').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-status]');
  if (b && b.dataset.status !== view.status) setView({ status: b.dataset.status });
});
$('view-assignee').addEventListener('change', () => setView({ assignee: $('view-assignee').value }));

let searchTimer = null;
function searchNow() {
  clearTimeout(searchTimer);
  const q = $('view-q').value.replace(/\s+/g, ' ').trim();
  if (q !== view.q) setView({ q });
}
$('view-q').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchNow, 300);
});
$('search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  searchNow();
});

// --- the desk: status and assignee of the conversation on screen ----------

function myExternalId() {
  if (session && session.user && session.user.sub) return session.user.sub;
  const mine = staff.find((u) => me && u.id === me.id);
  return mine ? mine.external_id : null;
}

function renderDesk() {
  const e = entries.get(openId);
  if (!e) return;
  const pill = $('conv-status');
  pill.dataset.status = e.status;
  pill.textContent = statusLabel(e.status);
  $('resolve').hidden = e.status === 'resolved';
  $('reopen').hidden = e.status !== 'resolved';
  $('set-pending').hidden = e.status !== 'open';
  $('claim').hidden = !!(e.assignee && me && e.assignee.id === me.id);
  const sel = $('conv-assignee');
  const options = [el('option', { value: '', text: 'Unassigned' })];
  const listed = new Set();
  if (me) {
    options.push(el('option', { value: myExternalId() || `#${me.id}`, text: `${me.name} (you)` }));
    listed.add(me.id);
  }
  for (const u of staff) {
    if (listed.has(u.id)) continue;
    options.push(el('option', { value: u.external_id, text: u.name }));
    listed.add(u.id);
  }
  if (e.assignee && !listed.has(e.assignee.id)) {
    options.push(el('option', { value: e.assignee.external_id, text: e.assignee.name }));
  }
  sel.replaceChildren(...options);
  sel.value = !e.assignee ? '' : me && e.assignee.id === me.id ? myExternalId() || `#${me.id}` : e.assignee.external_id;
}

// --- the transcript ------------------------------------------------------

const TRANSCRIPT_START_MS = 30000; // until the answer starts
const TRANSCRIPT_BODY_MS = 120000; // until it has all arrived
let transcriptBusy = false;

// downloadTranscript fetches the transcript of the conversation on screen
// and saves it; what goes wrong shows in the notice.
async function downloadTranscript() {
  if (openId === null || transcriptBusy) return;
  const conv = openId;
  const format = $('transcript-format').value === 'json' ? 'json' : 'text';
  const notes = $('transcript-notes').checked;
  const button = $('transcript');
  transcriptBusy = true;
  button.disabled = true;
  button.textContent = 'Downloading…';
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), TRANSCRIPT_START_MS);
  let stage = 'connect';
  try {
    const res = await fetch(`/admin/conversations/${conv}/transcript?format=${format}&notes=${notes}`, {
      headers: { 'X-Grainchat-Page': 'inbox' },
      credentials: 'same-origin',
      cache: 'no-store',
      signal: abort.signal,
    });
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), TRANSCRIPT_BODY_MS);
    stage = 'body';
    if (res.status !== 200) {
      const body = await res.json().catch(() => null);
      const err = body && body.error && typeof body.error === 'object' ? body.error : null;
      notice(`The transcript was not downloaded. ${err ? transcriptErrorText(err) : `The server answered ${res.status}.`}`);
      return;
    }
    const blob = await res.blob();
    saveFile(blob, `conversation-${conv}.${format === 'json' ? 'json' : 'txt'}`);
  } catch {
    if (abort.signal.aborted) notice('The transcript was not downloaded: the server took too long. Try again.');
    else if (stage === 'connect') notice('The transcript was not downloaded: cannot reach the chat server. Try again.');
    else notice('The transcript download was cut off. Try again.');
  } finally {
    clearTimeout(timer);
    transcriptBusy = false;
    button.disabled = false;
    button.textContent = 'Download transcript';
  }
}

// transcriptErrorText puts the API's error ({code, message}) into words.
function transcriptErrorText(err) {
  switch (err.code) {
    case 'invalid_token':
      return 'You are not signed in (any more); sign in again.';
    case 'forbidden':
      return 'Only staff can download transcripts.';
    default:
      return errorText(err, maxChars);
  }
}

// saveFile saves blob as a download named name.
function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  // The download has taken the file by then (revoking at once can cancel it).
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$('transcript').addEventListener('click', downloadTranscript);

function deskRequest(f) {
  if (openId === null) return;
  if (!conn.send({ ...f, conversation_id: openId })) notice('Not connected; try again in a moment.');
}

$('resolve').addEventListener('click', () => deskRequest({ type: 'status', status: 'resolved' }));
$('reopen').addEventListener('click', () => deskRequest({ type: 'status', status: 'open' }));
$('set-pending').addEventListener('click', () => deskRequest({ type: 'status', status: 'pending' }));
$('claim').addEventListener('click', () => {
  const ext = myExternalId();
  if (ext) deskRequest({ type: 'assign', assignee: ext });
  else notice('Your staff identity is not known yet; try again in a moment.');
});
$('conv-assignee').addEventListener('change', () => {
  const v = $('conv-assignee').value;
  if (v.startsWith('#')) return; // the page does not know its own external id yet
  deskRequest({ type: 'assign', assignee: v === '' ? null : v });
});

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
    viewers.delete(followed); // no longer told; the next open is
    followed = null;
  }
  const previous = entries.get(openId);
  openId = id;
  loaded = false;
  resumeAfter = null;
  thread.reset();
  if (visitorSeen.has(id)) thread.setSeen(visitorSeen.get(id));
  // Replies to this conversation not stored yet, in the order written.
  for (const item of outbox.failedItems(id)) {
    thread.addPending(item.cmid, item.text);
    if (item.frame && item.frame.code === 'stale_reply') showStale(item);
    else thread.setPending(item.cmid, 'failed', { text: errorText(item.frame, maxChars) });
  }
  for (const item of outbox.items(id)) {
    thread.addPending(item.cmid, item.text);
    thread.setPending(item.cmid, item.state === 'new' ? 'sending' : item.state);
  }
  if (previous) renderEntry(previous);
  basedOn = null;
  $('transcript-notes').checked = false; // notes in a transcript: asked each time, per conversation
  const e = entries.get(id);
  $('conv-name').textContent = displayName(e);
  $('conv-sub').textContent = e.user && e.user.external_id ? `Visitor ${e.user.external_id} · conversation ${id}` : `Conversation ${id}`;
  typingView.show(id);
  renderViewers();
  renderPresence();
  visitorPanel.show(id, e.user ? { ...e.user } : null, e.visitor);
  $('pane').hidden = false;
  $('pane-empty').hidden = true;
  document.body.classList.add('conversation-open');
  if (push) history.pushState(null, '', `#c${id}`);
  setComposerEnabled(me !== null && me.is_admin);
  follow();
  markRead(e);
  renderEntry(e);
  renderDesk();
  renderList(); // a conversation of another view leaves the list with the one left
  if (matchMedia('(min-width: 761px)').matches) $('text').focus();
}

function follow() {
  if (openId === null || followed === openId) return;
  if (conn.send({ type: 'open', conversation_id: openId })) followed = openId;
}

// renderViewers says in the header who else has the conversation on screen
// open (nothing when nobody else).
function renderViewers() {
  const others = (viewers.get(openId) || []).filter((v) => v && typeof v.name === 'string' && !(me && v.id === me.id));
  const text = viewingText(others.map((v) => v.name));
  const node = $('conv-viewers');
  if (node.textContent !== text) node.textContent = text;
  if (others.length > 3) node.title = others.map((v) => v.name).join(', ');
  else node.removeAttribute('title');
}

// presence takes a presence frame: a visitor came or went.
function presence(f) {
  if (typeof f.conversation_id !== 'number' || typeof f.online !== 'boolean') return;
  const id = f.conversation_id;
  if (f.online) online.add(id);
  else online.delete(id);
  const e = entries.get(id);
  if (!e) return;
  e.visitor = { online: f.online, last_seen_at: f.last_seen_at };
  renderEntry(e);
  if (id === openId) {
    renderPresence();
    visitorPanel.setPresence(e.visitor);
  }
}

// renderPresence says in the header whether the visitor of the
// conversation on screen is online, or when they were last seen (the exact
// time in the title).
function renderPresence() {
  const e = openId === null ? null : entries.get(openId);
  const v = e ? e.visitor : null;
  const node = $('conv-presence');
  const text = presenceText(v);
  if (node.textContent !== text) node.textContent = text;
  node.dataset.online = String(!!(v && v.online));
  const at = v && !v.online && v.last_seen_at ? fullTime(v.last_seen_at) : '';
  if (at) node.title = `Last seen ${at}`;
  else node.removeAttribute('title');
}
// "Last seen 5 min ago" grows older by itself.
setInterval(() => {
  renderPresence();
  const e = openId === null ? null : entries.get(openId);
  if (e) visitorPanel.setPresence(e.visitor);
}, 20000);

// The visitor panel is a column beside the conversation on wide screens and
// a drawer (the header's Visitor button) on narrower ones.
function showVisitorDrawer(on) {
  document.body.classList.toggle('visitor-open', on);
  $('visitor-toggle').setAttribute('aria-expanded', String(on));
}
$('visitor-toggle').addEventListener('click', () => showVisitorDrawer(!document.body.classList.contains('visitor-open')));
$('visitor-close').addEventListener('click', () => showVisitorDrawer(false));

// The agent's away state: the toggle in the top bar, and the idle timer.
const away = new AwayControl({
  send: (f) => conn.send(f),
  onChange: (isAway, auto) => {
    const b = $('away');
    b.disabled = false;
    b.textContent = isAway ? 'Away' : 'Available';
    b.dataset.away = String(isAway);
    b.setAttribute('aria-pressed', String(isAway));
    b.title = isAway
      ? `${auto ? 'Away after 10 minutes without activity' : 'You are away'}: visitors read the away message. Click to be available.`
      : 'Visitors see that support is online. Click to set yourself away.';
  },
});
$('away').addEventListener('click', () => {
  if (!away.toggle()) notice('Not connected; try again in a moment.');
});

// The sound toggle and the button that asks for desktop notifications.
const beeper = new Beeper();
function renderSound() {
  const b = $('sound');
  b.setAttribute('aria-pressed', String(beeper.on));
  b.textContent = beeper.on ? 'Sound on' : 'Sound off';
}
$('sound').addEventListener('click', () => {
  beeper.set(!beeper.on);
  renderSound();
  beeper.beep(); // what it sounds like (nothing when turned off)
});
renderSound();

function renderNotify() {
  $('notify-enable').hidden = notificationPermission() !== 'default';
}
$('notify-enable').addEventListener('click', () => {
  // The browser asks only from a click.
  const asked = window.Notification.requestPermission();
  if (asked && typeof asked.then === 'function') asked.then(renderNotify, renderNotify);
});
renderNotify();
// The permission may change in the browser's site settings.
if (navigator.permissions && navigator.permissions.query) {
  navigator.permissions.query({ name: 'notifications' }).then(
    (s) => s.addEventListener('change', renderNotify),
    () => {},
  );
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
input.addEventListener('input', () => {
  updateCounter();
  // The reply is written after the newest message on screen now: the
  // stale-reply guard checks nobody else wrote since.
  if (!input.value.trim()) basedOn = null;
  else if (basedOn === null) basedOn = thread.maxSeq;
  if (openId !== null && !noteMode) typingSender.input(openId, input.value);
});

const canned = new CannedReplies({
  send: (f) => conn.send(f),
  input,
  onInserted: () => {
    fit();
    updateCounter();
    if (basedOn === null) basedOn = thread.maxSeq;
    if (openId !== null && !noteMode) typingSender.input(openId, input.value);
  },
});

// setNoteMode makes the composer write notes (on) or replies.
function setNoteMode(on) {
  noteMode = on;
  const b = $('note-mode');
  b.setAttribute('aria-pressed', String(on));
  $('composer').classList.toggle('note-mode', on);
  input.placeholder = on ? 'Internal note: only staff see it…' : 'Reply…';
  $('send').textContent = on ? 'Add note' : 'Send';
}
$('note-mode').addEventListener('click', () => {
  setNoteMode(!noteMode);
  input.focus();
});

function submit() {
  const text = input.value.trim();
  if (!text || openId === null || !me) return;
  const n = chars(text);
  if (n > maxChars) {
    notice(`${noteMode ? 'Note' : 'Message'} too long: ${n} characters, the limit is ${maxChars}. Shorten it and send again.`);
    return;
  }
  if (noteMode) {
    // A note is not queued: it is sent now, or not at all (and stays in
    // the composer).
    if (!conn.send({ type: 'note', conversation_id: openId, message: text })) {
      notice('Not connected; the note was not added. Try again in a moment.');
      return;
    }
    pendingNote = { conv: openId, text };
    input.value = '';
    basedOn = null;
    fit();
    updateCounter();
    $('notice').hidden = true;
    return;
  }
  const cmid = newClientMsgId();
  thread.addPending(cmid, text);
  // Sent now, or after the replies before it, or after the next welcome;
  // based on the newest message on screen when the agent began writing.
  outbox.push(openId, text, cmid, { basedOn: basedOn ?? thread.maxSeq });
  typingSender.sent();
  basedOn = null;
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
  if (!ev.isComposing && canned.key(ev)) {
    ev.preventDefault();
    return;
  }
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    submit();
  }
});

fetchSession('').then((s) => {
  session = s;
  renderDesk();
  if (s && s.dev) {
    $('dev-banner').hidden = false;
    $('signout').hidden = false;
  }
});
conn.start();
