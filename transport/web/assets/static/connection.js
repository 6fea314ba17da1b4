// The WebSocket connection to chatd, speaking grainchat.v1 (docs/PROTOCOL.md).
//
// It reconnects by itself with exponential back-off and full jitter (the
// first retry within 250 ms, doubling up to 10 s; a connection that stayed up
// resets it), and at once when the page becomes visible or the network comes
// back; the pages resume by seq on every welcome (see "Resuming after a
// reconnect"). When a socket fails before it opens, the browser does not say
// why (401, 403, 503 and "server down" all look alike), so the connection
// asks GET /session to tell "not signed in" from "unavailable" and
// "unreachable". A socket closed because its token expired (4401) or by
// policy (1008) is not reopened with the same token: a new one is needed
// (setToken).
//
// Leaving the page: a browser may keep it, frozen, in its back/forward cache
// (Chromium does, and then left the socket open: the server went on counting
// the person as connected, and as viewing the conversation they had open).
// The connection closes its socket when the page is hidden that way
// (pagehide) and connects again if it is shown again (pageshow, persisted),
// resuming as after any reconnect.

export const PROTOCOL = 'grainchat.v1';

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 10000;
// A connection that lived this long resets the back-off.
const STABLE_MS = 10000;

// Close codes after which the same token must not reconnect.
const CLOSE_TOKEN_EXPIRED = 4401;
const CLOSE_POLICY = 1008;

// States reported to onState(state, detail):
//   connecting   opening a socket
//   online       welcomed; frames flow
//   reconnecting the socket closed; detail.retryAt, detail.code, detail.reason
//   offline      the server cannot be reached; detail.retryAt
//   unavailable  the server answers but refuses the socket (503, overload); detail.retryAt
//   signed-out   no valid token (detail.reason "no_token" | "expired" | "invalid"); no retry
//   stopped      stop() was called
export class Connection {
  constructor({ token = '', onWelcome, onFrame, onState, onDown }) {
    this.token = token;
    this.onWelcome = onWelcome;
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.onDown = onDown || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.online = false;
    this.session = null; // the last GET /session answer
    this.refused = false; // closed for its token (4401, 1008): needs a new one
    this.hidden = false; // the page was left (pagehide): no socket until it is shown again
    addEventListener('online', () => this.kick());
    addEventListener('pagehide', () => this.leave());
    addEventListener('pageshow', (ev) => {
      if (ev.persisted) this.back();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.kick();
    });
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    this.online = false;
    if (ws) ws.close(1000, 'bye');
    this.onState('stopped', {});
  }

  // setToken replaces the token. A live socket keeps going and is told in
  // band ({"type":"auth"}, answered auth or error); a socket that is down
  // (or was closed for its token) reconnects with the new one at once.
  setToken(token) {
    this.token = token;
    this.refused = false;
    if (this.online && this.send({ type: 'auth', token })) return;
    this.reconnectNow();
  }

  // switchUser connects with token, another user's (or the first one):
  // the socket, if any, is closed and a new one opens.
  switchUser(token) {
    this.token = token;
    this.reconnectNow();
  }

  // kick reconnects at once when the page is not connected (the network
  // came back, the tab became visible): a pending retry, a diagnosis or an
  // attempt in progress starts over, from the shortest back-off.
  kick() {
    if (!this.stopped && !this.refused && !this.hidden && !this.online) this.reconnectNow();
  }

  // leave closes the socket as the page is left (it may be kept in the
  // back/forward cache, where nothing runs).
  leave() {
    if (this.stopped) return;
    this.hidden = true;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'page left');
    if (this.online) {
      this.online = false;
      this.onDown();
    }
  }

  // back connects again when the page comes back from the back/forward
  // cache.
  back() {
    if (!this.hidden) return;
    this.hidden = false;
    if (!this.stopped && !this.refused) this.reconnectNow();
  }

  reconnectNow() {
    if (this.stopped) this.stopped = false;
    this.refused = false;
    clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.close(1000, 'reconnect');
      if (this.online) {
        this.online = false;
        this.onDown();
      }
    }
    this.attempt = 0;
    this.open();
  }

  // send writes one frame; false when not connected (the caller keeps what
  // it could not send and sends it again after the next welcome).
  send(frame) {
    if (!this.ws || !this.online || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let url = `${scheme}//${location.host}/ws/chat/`;
    if (this.token) url += '?token=' + encodeURIComponent(this.token);
    return url;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    this.onState('connecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url(), [PROTOCOL]);
    } catch (err) {
      this.retry('unavailable', { reason: String(err) });
      return;
    }
    this.ws = ws;
    let opened = false;
    let welcomedAt = 0;
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!frame || typeof frame !== 'object' || Array.isArray(frame)) return;
      if (frame.type === 'welcome') {
        welcomedAt = Date.now();
        this.online = true;
        this.onState('online', { user: frame.user });
        this.onWelcome(frame);
        return;
      }
      this.onFrame(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return; // replaced or stopped
      this.ws = null;
      const wasOnline = this.online;
      this.online = false;
      if (wasOnline) this.onDown();
      if (this.stopped) return;
      if (welcomedAt && Date.now() - welcomedAt > STABLE_MS) this.attempt = 0;
      if (ev.code === CLOSE_TOKEN_EXPIRED || ev.code === CLOSE_POLICY) {
        // The same token would be refused again: wait for a new one. A page
        // signed in by its cookie asks once whether the host site has renewed
        // it meanwhile (GET /session, no WebSocket attempt), and reconnects
        // only if so.
        this.refused = true;
        const detail = { reason: ev.code === CLOSE_TOKEN_EXPIRED ? 'expired' : 'policy', code: ev.code, session: this.session };
        if (ev.code === CLOSE_TOKEN_EXPIRED && !this.token && welcomedAt) this.renewed(detail);
        else this.onState('signed-out', detail);
        return;
      }
      if (!opened) {
        this.diagnose();
        return;
      }
      this.retry('reconnecting', { code: ev.code, reason: closeReason(ev.code) });
    };
  }

  // renewed reconnects if the cookie now holds a valid token, and reports
  // signed-out otherwise.
  async renewed(detail) {
    let ok = false;
    try {
      const res = await fetch('/session', { credentials: 'same-origin', cache: 'no-store' });
      const info = res.status === 200 ? await res.json() : null;
      // Renewed: valid, and for a while yet (not the token that just expired).
      ok = Boolean(info && info.expires_at && Date.parse(info.expires_at) > Date.now() + 5000);
    } catch {
      ok = false;
    }
    if (this.stopped || this.hidden || this.ws || !this.refused) return; // something else moved on meanwhile
    if (ok) this.reconnectNow();
    else this.onState('signed-out', detail);
  }

  // diagnose finds out why a socket did not open, then retries (or not).
  async diagnose() {
    let state = 'offline';
    let info = null;
    try {
      const headers = this.token ? { Authorization: 'Bearer ' + this.token } : {};
      const res = await fetch('/session', { headers, credentials: 'same-origin', cache: 'no-store' });
      info = await res.json().catch(() => null);
      if (info) this.session = info;
      state = res.status === 401 ? 'signed-out' : 'unavailable';
    } catch {
      state = 'offline';
    }
    if (this.stopped || this.hidden || this.ws) return;
    if (state === 'signed-out') {
      this.onState('signed-out', { reason: info && info.reason, session: info });
      return; // a new token (sign-in, setToken) is needed: reconnectNow()
    }
    this.retry(state, {});
  }

  retry(state, detail) {
    // Full jitter: anywhere between 0 and the attempt's ceiling, so that the
    // pages of a restarted server do not come back all at once.
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.attempt);
    this.attempt++;
    const delay = Math.random() * base;
    const retryAt = Date.now() + delay;
    this.onState(state, { ...detail, retryAt });
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped && !this.hidden && !this.ws) this.open();
    }, delay);
  }
}

// closeReason puts the documented close codes into words.
export function closeReason(code) {
  switch (code) {
    case 1001:
      return 'The chat server is restarting.';
    case 1006:
      return 'The connection was lost.';
    case 1008:
      return 'The server closed the connection by policy.';
    case 1009:
      return 'The server refused a message that was too large.';
    case 1011:
      return 'The server hit an unexpected error.';
    case 1013:
      return 'The server could not keep up; trying again.';
    case 4001:
      return 'The server asked to resynchronize.';
    case 4008:
      return 'The connection fell behind.';
    case 4401:
      return 'Your session expired.';
    default:
      return 'The connection closed.';
  }
}
