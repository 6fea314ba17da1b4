// Live signals on the pages (docs/PROTOCOL.md, "Live signals"): who is
// typing in a conversation, and (staff) who else has it open.
//
// Typing. While the user types, the page sends {"type":"typing"} at most
// once a second, and only when the composer's text is not empty and has
// changed (TypingSender). The server relays it to the conversation's other
// people, at most once every 2 s per user; there is no "stopped typing"
// frame. A message starts both intervals over: its author's next keystroke
// is shown at once. A page shows "Ann is typing…" below the thread until 5 s pass
// without a typing frame from Ann, or a message from Ann arrives in that
// conversation (TypingView). A visitor sees staff as "Support" (id 0), whom
// any staff message ends.
//
// The indicator is a line of its own, always there (empty when nobody
// types): its coming and going never moves the thread. It is a polite live
// region, written only when its text changes, so a screen reader says
// "Ann is typing…" once, not at every frame. Names are text, never HTML.

// TYPING_SEND_MS: at most one typing frame this often, per conversation,
// while one message is written (the first keystroke after a message sends
// one at once).
export const TYPING_SEND_MS = 1000;
// TYPING_SHOW_MS: a typist is shown this long after their last typing frame.
export const TYPING_SHOW_MS = 5000;

// TypingSender sends typing frames for the composer.
export class TypingSender {
  // send writes a frame (false when not connected: nothing is sent, and the
  // next keystroke tries again).
  constructor(send) {
    this.send = send;
    this.conv = undefined;
    this.text = '';
    this.at = -Infinity;
  }

  // input takes the composer's text after a change; conv is the
  // conversation it is written in (null: a visitor's own, left unnamed).
  input(conv, text) {
    if (conv !== this.conv) {
      this.conv = conv;
      this.text = '';
      this.at = -Infinity;
    }
    const changed = text !== this.text;
    this.text = text;
    if (!changed || !text.trim()) return;
    const now = performance.now();
    if (now - this.at < TYPING_SEND_MS) return;
    const f = { type: 'typing' };
    if (conv !== null) f.conversation_id = conv;
    if (this.send(f)) this.at = now;
  }

  // sent tells that the composer's message went: the others' pages drop
  // its author's typing line when it shows, so the next keystroke sends a
  // typing frame at once, however soon (the server starts its own
  // interval over at each message too).
  sent() {
    this.text = '';
    this.at = -Infinity;
  }
}

// TypingView keeps who types in which conversation and shows the typists of
// the conversation on screen in node.
export class TypingView {
  // self returns the page's own user id (null before the welcome): the
  // server never relays one's own typing, and the page does not show it
  // either.
  constructor({ node, self }) {
    this.node = node;
    this.self = self;
    this.convs = new Map(); // conversation id -> Map(user id -> { name, isAdmin, timer })
    this.shown = null;
  }

  // typing takes a typing frame.
  typing(f) {
    const conv = f.conversation_id;
    const u = f.user;
    if (typeof conv !== 'number' || !u || typeof u.id !== 'number' || u.id === this.self()) return;
    let typists = this.convs.get(conv);
    if (!typists) {
      typists = new Map();
      this.convs.set(conv, typists);
    }
    const before = typists.get(u.id);
    if (before) clearTimeout(before.timer);
    typists.set(u.id, {
      name: typeof u.name === 'string' && u.name ? u.name : 'Someone',
      isAdmin: u.is_admin === true,
      timer: setTimeout(() => this.drop(conv, u.id), TYPING_SHOW_MS),
    });
    if (conv === this.shown) this.render();
  }

  // message takes a message frame: its sender has stopped typing (and a
  // visitor's "Support" has, at any staff message).
  message(m) {
    const typists = this.convs.get(m.conversation_id);
    if (!typists) return;
    for (const [id, t] of typists) {
      if (id === m.sender_id || (id === 0 && t.isAdmin && m.sender_is_admin === true)) this.drop(m.conversation_id, id);
    }
  }

  drop(conv, id) {
    const typists = this.convs.get(conv);
    const t = typists && typists.get(id);
    if (!t) return;
    clearTimeout(t.timer);
    typists.delete(id);
    if (typists.size === 0) this.convs.delete(conv);
    if (conv === this.shown) this.render();
  }

  // show shows conversation conv's typists (null: none).
  show(conv) {
    this.shown = conv;
    this.render();
  }

  // clear forgets every typist (the page starts over).
  clear() {
    for (const typists of this.convs.values()) for (const t of typists.values()) clearTimeout(t.timer);
    this.convs.clear();
    this.render();
  }

  render() {
    const typists = this.convs.get(this.shown);
    const names = typists ? [...typists.values()].map((t) => t.name).sort((a, b) => a.localeCompare(b)) : [];
    const text = names.length ? `${listNames(names)} ${names.length === 1 ? 'is' : 'are'} typing…` : '';
    if (this.node.textContent !== text) this.node.textContent = text;
  }
}

// viewingText says who else has a conversation open: "Ann is viewing",
// "Ann and Bob are viewing" ('' for nobody).
export function viewingText(names) {
  if (!names.length) return '';
  return `${listNames(names)} ${names.length === 1 ? 'is' : 'are'} viewing`;
}

// listNames joins names: "Ann", "Ann and Bob", "Ann, Bob and Carl", "Ann,
// Bob and 3 others".
export function listNames(names) {
  if (names.length <= 1) return names.join('');
  if (names.length <= 3) return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `${names.slice(0, 2).join(', ')} and ${names.length - 2} others`;
}

// Presence and availability (docs/PROTOCOL.md, "Presence", "Staff
// availability"). Staff see whether each visitor is online, or when they were
// last seen; visitors see whether staff are available. An agent may set
// themselves away (AwayControl), and is set away by the page after
// AWAY_AFTER_MS without input on it.

// presenceText puts a visitor's presence ({online, last_seen_at}) into
// words: "Online", "Last seen just now", "Last seen 5 min ago", "Last seen
// 3 h ago", "Last seen 2 days ago", "Offline" (no time known), '' (nothing
// known).
export function presenceText(v, now = Date.now()) {
  if (!v || typeof v !== 'object') return '';
  if (v.online === true) return 'Online';
  const at = Date.parse(v.last_seen_at || '');
  if (Number.isNaN(at)) return 'Offline';
  const min = Math.floor(Math.max(0, now - at) / 60000);
  if (min < 1) return 'Last seen just now';
  if (min < 60) return `Last seen ${min} min ago`;
  const h = Math.floor(min / 60);
  if (h < 24) return `Last seen ${h} h ago`;
  const d = Math.floor(h / 24);
  return `Last seen ${d} ${d === 1 ? 'day' : 'days'} ago`;
}

// AWAY_AFTER_MS: an agent's page sets them away after this long without
// input on it (mouse, keys, focus).
export const AWAY_AFTER_MS = 10 * 60 * 1000;

// INPUT_EVENTS are what counts as input on the page.
const INPUT_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'focusin'];

// AwayControl keeps an agent's away state: set by hand (toggle), or by the
// page after idleMs without input, and then back at the next input. The
// server keeps away per socket: after each welcome the page says it again
// (up). What it shows is the server's answer (the away frame).
export class AwayControl {
  // send writes a frame (false when not connected); onChange(away, auto)
  // shows the state the server confirmed.
  constructor({ send, onChange, idleMs = AWAY_AFTER_MS, target = window }) {
    this.send = send;
    this.onChange = onChange;
    this.idleMs = idleMs;
    this.away = false; // as the server confirmed it
    this.wanted = false; // as the agent (or the idle timer) wants it
    this.auto = false; // wanted away by the idle timer, not by hand
    this.last = performance.now();
    this.online = false;
    const onInput = () => this.input();
    for (const type of INPUT_EVENTS) target.addEventListener(type, onInput, { capture: true, passive: true });
    target.addEventListener('focus', onInput);
    this.timer = setInterval(() => this.check(), Math.min(30000, Math.max(50, idleMs / 4)));
  }

  // toggle sets the agent away, or back, by hand; false when not connected.
  toggle() {
    if (!this.online) return false;
    this.last = performance.now();
    return this.set(!this.wanted, false);
  }

  set(away, auto) {
    this.wanted = away;
    this.auto = away && auto;
    return this.online ? this.send({ type: 'away', away }) : false;
  }

  // input notes input on the page: back from an automatic away.
  input() {
    this.last = performance.now();
    if (this.wanted && this.auto) this.set(false, false);
  }

  check() {
    if (!this.wanted && performance.now() - this.last >= this.idleMs) this.set(true, true);
  }

  // up: a new socket (not away on the server): say away again if wanted.
  up() {
    this.online = true;
    this.away = false;
    if (this.wanted) this.send({ type: 'away', away: true });
    else this.onChange(false, false);
  }

  down() {
    this.online = false;
  }

  // answer takes an away frame.
  answer(f) {
    if (typeof f.away !== 'boolean') return;
    this.away = f.away;
    this.onChange(this.away, this.away && this.auto);
  }

  stop() {
    clearInterval(this.timer);
  }
}

// availabilityText is what a visitor reads about staff from an availability
// frame.
export function availabilityText(f) {
  if (f.staff_online === true) return "We're online";
  return typeof f.message === 'string' && f.message.trim() ? f.message : "We're away right now.";
}
