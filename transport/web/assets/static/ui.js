// Small DOM helpers shared by the pages. Text always goes through text
// nodes (append of a string, textContent); nothing here parses HTML.

// el builds an element: el('p', { class: 'x', text: 'hello' }, child, 'text').
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

// shortTime: "14:05" today, "Nov 26, 14:05" before.
export function shortTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  if (sameDay(d, new Date())) return timeFormat.format(d);
  return `${dayFormat.format(d)}, ${timeFormat.format(d)}`;
}

// listTime: "14:05" today, "Nov 26" before (the inbox's column).
export function listTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return sameDay(d, new Date()) ? timeFormat.format(d) : dayFormat.format(d);
}

export function fullTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : fullFormat.format(d);
}

// chars counts characters as the server does (code points, after trimming).
export function chars(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

// newClientMsgId makes an idempotency key. crypto.getRandomValues works on
// plain http pages too (randomUUID needs a secure context).
export function newClientMsgId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// errorText puts a v1 error frame into words (docs/PROTOCOL.md, Error codes).
export function errorText(frame, maxChars) {
  switch (frame.code) {
    case 'message_too_long':
      return `Message too long: the limit is ${maxChars || 'exceeded'} characters. Shorten it and send again.`;
    case 'too_many_pending':
    case 'rate_limited':
      return 'You are sending messages too fast. Wait a moment, then try again.';
    case 'unavailable':
      return 'The chat is temporarily unavailable; this message was not confirmed. Try again.';
    case 'empty_message':
      return 'Write something first.';
    case 'invalid_text':
      return 'The message contains a character that cannot be sent.';
    case 'forbidden':
      return 'You are not allowed to do that.';
    case 'conversation_not_found':
      return 'This conversation does not exist (any more).';
    case 'too_many_open':
      return 'Too many conversations open at once; close one first.';
    case 'internal':
      return 'Something went wrong on the server. Try again.';
    case 'token_expired':
      return 'Your session expired; sign in again.';
    case 'invalid_token':
      return 'The new sign-in was refused; the chat keeps the current one until it expires.';
    default:
      return frame.message ? `Error: ${frame.message}` : 'Something went wrong.';
  }
}

// StatusView shows the connection state: a short label in the top bar and,
// when something is wrong, a sentence with what happens next in the banner.
export class StatusView {
  constructor({ pill, banner, loginLink = true }) {
    this.pill = pill;
    this.banner = banner;
    this.loginLink = loginLink;
    this.retryNow = null;
    this.tick = null;
    this.last = null;
  }

  set(state, detail = {}) {
    clearInterval(this.tick);
    this.tick = null;
    const labels = {
      connecting: detail.attempt ? 'Reconnecting…' : 'Connecting…',
      online: 'Connected',
      reconnecting: 'Reconnecting…',
      offline: 'Offline',
      unavailable: 'Unavailable',
      'signed-out': 'Signed out',
      stopped: 'Disconnected',
    };
    this.pill.textContent = labels[state] || state;
    this.pill.dataset.state = state;
    if (state === 'connecting') this.pill.dataset.attempt = String(detail.attempt || 0);
    document.body.dataset.connection = state;
    if (state === 'connecting' && detail.attempt && this.last) {
      // Keep the previous explanation while the retry runs.
      this.render(this.last.state, { ...this.last.detail, retryAt: 0 });
      return;
    }
    const render = () => this.render(state, detail);
    render();
    if (detail.retryAt) this.tick = setInterval(render, 1000);
    this.last = state === 'online' || state === 'connecting' ? null : { state, detail };
  }

  render(state, detail) {
    const b = this.banner;
    b.replaceChildren();
    const retryIn = detail.retryAt ? Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000)) : 0;
    const when = retryIn > 0 ? `Retrying in ${retryIn} s.` : 'Retrying…';
    const reconnect = retryIn > 0 ? `Reconnecting in ${retryIn} s.` : 'Reconnecting…';
    const retryButton = () =>
      el('button', { type: 'button', class: 'link', text: 'Retry now', onclick: () => this.retryNow && this.retryNow() });
    let text = '';
    let extra = null;
    switch (state) {
      case 'online':
      case 'connecting':
        b.hidden = true;
        return;
      case 'reconnecting':
        text = `${detail.reason || 'The connection was lost.'} ${reconnect}`;
        extra = retryButton();
        break;
      case 'offline':
        text = `Cannot reach the chat server. ${when}`;
        extra = retryButton();
        break;
      case 'unavailable':
        text = `The chat is temporarily unavailable. ${when}`;
        extra = retryButton();
        break;
      case 'signed-out': {
        const session = detail.session || {};
        if (detail.reason === 'expired') text = 'Your session expired; sign in again.';
        else if (detail.reason === 'policy') text = 'The server closed the chat for this sign-in; sign in again.';
        else text = 'You are not signed in, so the chat cannot connect.';
        if (session.dev && session.login_url && this.loginLink) {
          extra = el('a', { href: session.login_url, target: '_top', text: 'Sign in (development mode)' });
        } else {
          extra = retryButton();
        }
        break;
      }
      case 'stopped':
        text = detail.text || 'Disconnected.';
        break;
      default:
        text = state;
    }
    b.append(el('span', { text }), ' ', extra);
    b.hidden = false;
  }
}

// fetchSession asks GET /session who the page's token names (null when the
// server has no such route or cannot be reached).
export async function fetchSession(token) {
  try {
    const headers = token ? { Authorization: 'Bearer ' + token } : {};
    const res = await fetch('/session', { headers, credentials: 'same-origin', cache: 'no-store' });
    if (res.status !== 200 && res.status !== 401) return null;
    return await res.json();
  } catch {
    return null;
  }
}

// autoGrow makes a textarea follow its content, up to max pixels.
// scrollHeight counts the padding but not the borders: a border-box textarea
// needs its borders on top (a content-box one, its padding off), or its text
// is a pixel or two taller than its room and it scrolls, showing a scroll bar
// for a single line (Firefox).
export function autoGrow(textarea, max = 160) {
  const fit = () => {
    textarea.style.height = 'auto';
    const cs = getComputedStyle(textarea);
    const extra = cs.boxSizing === 'border-box'
      ? parseFloat(cs.borderTopWidth) + parseFloat(cs.borderBottomWidth)
      : -(parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom));
    textarea.style.height = `${Math.min(Math.ceil(textarea.scrollHeight + extra), max)}px`;
  };
  textarea.addEventListener('input', fit);
  return fit;
}

// RESET_NOTE is what the pages say when the server's store is not the one
// what they showed came from.
export const RESET_NOTE = 'The chat server was reset; earlier messages are no longer available.';

// showResetNote shows RESET_NOTE in node, with a button that hides it.
export function showResetNote(node) {
  node.replaceChildren(
    el('span', { text: RESET_NOTE }),
    ' ',
    el('button', { type: 'button', class: 'link', text: 'Dismiss', onclick: () => (node.hidden = true) }),
  );
  node.hidden = false;
}

const knownStores = new Map(); // storage key -> store_id, for storage that is denied

// rememberStore records the store_id a welcome (or inbox) named under key
// (sessionStorage by default) and reports 'changed' when it differs from the
// one recorded before, 'same' otherwise (also when the server names none).
export function rememberStore(storeId, key = 'grainchat.store_id', storage = 'session') {
  if (typeof storeId !== 'string' || storeId === '') return 'same';
  let area = null;
  try {
    area = storage === 'local' ? localStorage : sessionStorage;
  } catch {
    area = null;
  }
  let before = knownStores.get(key);
  if (before === undefined && area) {
    try {
      before = area.getItem(key) ?? undefined;
    } catch {
      before = undefined;
    }
  }
  knownStores.set(key, storeId);
  if (area) {
    try {
      area.setItem(key, storeId);
    } catch {
      // storage full or denied: remembered in memory only
    }
  }
  return before !== undefined && before !== storeId ? 'changed' : 'same';
}
