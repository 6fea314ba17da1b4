// Anonymous visitors (chatd --anonymous-visitors; docs/API.md, "Anonymous
// visitors"; SECURITY.md). A visitor page without a token of the host site
// (nor a chat_token cookie) asks chatd for an identity (POST /anonymous) and
// keeps its token where it survives a reload:
//   - in the widget's frame, in the HOST page's localStorage: the host page
//     is first-party, so this holds where third-party cookies and storage
//     are blocked. The widget (widget.js) hands the stored token to the frame
//     in its address's fragment (anon=…, with host=, the host page's origin),
//     and the frame gives a new or renewed one back by postMessage to that
//     origin only (grainchat:anonymous); an empty token means "forget it".
//   - on chatd's own page (/chat/), in this origin's localStorage.
// Each visit renews the token (same identity), so one in use never expires.
// When the visitor turns out to be signed in (the host passes its token, or
// the cookie signs in), the anonymous conversation is merged into theirs
// (POST /anonymous/merge) and the anonymous token forgotten.

const KEY = 'grainchat.anonymous';

// AnonymousIdentity finds the token a visitor page connects with.
export class AnonymousIdentity {
  // hostOrigin: in the widget's frame, the host page's origin (the stored
  // token lives there); '' on chatd's own page.
  constructor({ embedded, hostOrigin, stored }) {
    this.embedded = embedded;
    this.hostOrigin = hostOrigin;
    this.stored = stored || ''; // the anonymous token known at load
    this.current = ''; // the anonymous token this page connects with ('' if not anonymous)
    if (!embedded) {
      try {
        this.stored = localStorage.getItem(KEY) || '';
      } catch {
        this.stored = '';
      }
    }
  }

  // resolve returns the token to connect with: token (the host site's) if
  // there is one, after merging a known anonymous identity into it; '' when
  // the cookie signs in (session says so); else an anonymous token, when the
  // server accepts anonymous visitors.
  async resolve(token, session) {
    const signedIn = Boolean(token) || Boolean(session && session.signed_in && !(session.user && session.user.anonymous));
    if (signedIn) {
      if (this.stored) await this.merge(token);
      return token;
    }
    if (!session || !session.anonymous) return token;
    return this.obtain();
  }

  // obtain renews the stored anonymous token, or gets a new identity.
  async obtain() {
    try {
      const headers = this.stored ? { Authorization: 'Bearer ' + this.stored } : {};
      const res = await fetch('/anonymous', { method: 'POST', headers, credentials: 'omit', cache: 'no-store' });
      if (res.status !== 200) return this.stored; // 429: the stored one, if any, may still work
      const body = await res.json();
      if (!body || typeof body.token !== 'string' || !body.token) return this.stored;
      this.keep(body.token);
      this.current = body.token;
      return body.token;
    } catch {
      this.current = this.stored;
      return this.stored;
    }
  }

  // merge moves the anonymous conversation into the signed-in visitor's
  // (token, or the cookie when token is ''), then forgets the anonymous
  // identity; kept (and tried again next time) when chatd cannot answer.
  async merge(token) {
    const anon = this.current || this.stored;
    if (!anon) return;
    try {
      const headers = { 'Content-Type': 'application/json' };
      if (token) headers.Authorization = 'Bearer ' + token;
      const res = await fetch('/anonymous/merge', {
        method: 'POST', headers, credentials: 'same-origin', cache: 'no-store',
        body: JSON.stringify({ anonymous_token: anon }),
      });
      if (res.status >= 500) return;
    } catch {
      return;
    }
    this.current = '';
    this.keep('');
  }

  // keep stores the anonymous token where the next visit finds it ('' to
  // forget it).
  keep(t) {
    this.stored = t;
    if (this.embedded) {
      if (this.hostOrigin && window.parent !== window) {
        window.parent.postMessage({ type: 'grainchat:anonymous', token: t }, this.hostOrigin);
      }
      return;
    }
    try {
      if (t) localStorage.setItem(KEY, t);
      else localStorage.removeItem(KEY);
    } catch {
      /* storage blocked: the identity lasts as long as the page */
    }
  }
}
