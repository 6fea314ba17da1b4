// The inbox's visitor panel: who the visitor of the conversation on screen
// is, and where they are (docs/PROTOCOL.md, "The visitor's page").
//
// It shows the visitor's name and id, email, the host site's attributes of
// them (the token's ctx: each key and value; a value that is not a string
// as compact JSON), whether they are online or when they were last seen,
// the page of the host site they are on (title, address) and their
// browser. The server sends a visitor frame when the page opens a
// conversation and again each time its visitor reports another page, so the
// panel follows the visitor live.
//
// Everything in it comes from the visitor or the host site and is shown as
// text (textContent, never HTML); the page's address is a link only when it
// is http or https, opened in a new tab without referrer or opener.

import { el, fullTime } from './ui.js';
import { presenceText } from './live.js';

export class VisitorPanel {
  // panel: the aside; details: the dl inside it.
  constructor({ panel, details }) {
    this.panel = panel;
    this.details = details;
    this.users = new Map(); // conversation id -> the user of its last visitor frame
    this.conv = null;
    this.presence = null; // {online, last_seen_at} of the visitor on screen
  }

  // frame takes a visitor frame; reports whether it shows it.
  frame(f) {
    if (typeof f.conversation_id !== 'number' || !f.user || typeof f.user !== 'object') return false;
    this.users.set(f.conversation_id, f.user);
    if (f.conversation_id !== this.conv) return false;
    this.render();
    return true;
  }

  // show puts conversation conv's visitor on screen: what a visitor frame
  // said, else what the inbox entry knows (fallback) until one comes.
  show(conv, fallback, presence) {
    this.conv = conv;
    this.fallback = fallback || {};
    this.presence = presence || null;
    this.panel.hidden = conv === null;
    this.render();
  }

  // setPresence updates the online / last seen line.
  setPresence(presence) {
    this.presence = presence || null;
    const node = this.details.querySelector('[data-field="presence"]');
    if (node) {
      const text = presenceText(this.presence) || 'Unknown';
      if (node.textContent !== text) node.textContent = text;
      node.dataset.online = String(!!(this.presence && this.presence.online));
    }
  }

  // forget drops what the panel knows (another store: the ids mean others).
  forget() {
    this.users.clear();
    this.show(null, null, null);
  }

  render() {
    if (this.conv === null) {
      this.details.replaceChildren();
      return;
    }
    const u = this.users.get(this.conv) || this.fallback || {};
    const rows = [];
    const row = (label, field, ...value) => {
      rows.push(el('dt', { text: label }), el('dd', { dataset: { field } }, ...value));
    };
    row('Name', 'name', text(u.name) || '—');
    if (text(u.external_id)) row('Visitor id', 'external-id', text(u.external_id));
    row('Email', 'email', text(u.email) || '—');
    row('Status', 'presence', presenceText(this.presence) || 'Unknown');
    const page = u.page && typeof u.page === 'object' ? u.page : null;
    if (page) {
      row('Page', 'page-title', text(page.title) || '(no title)');
      row('Address', 'page-url', pageLink(text(page.url)));
      const at = fullTime(page.updated_at);
      if (at) row('Reported', 'page-updated', at);
      row('Browser', 'browser', text(page.browser) || '—');
    } else {
      row('Page', 'page-title', 'Not reported');
    }
    this.details.replaceChildren(...rows);
    const ctx = u.context && typeof u.context === 'object' && !Array.isArray(u.context) ? u.context : null;
    if (ctx && Object.keys(ctx).length) {
      const list = el('dl', { class: 'visitor-context', dataset: { field: 'context' } });
      for (const key of Object.keys(ctx).sort()) {
        list.append(el('dt', { text: key, dataset: { contextKey: key } }), el('dd', { text: valueText(ctx[key]) }));
      }
      this.details.append(el('dt', { text: 'From the site' }), el('dd', {}, list));
    }
    this.setPresence(this.presence);
  }
}

function text(v) {
  return typeof v === 'string' ? v : '';
}

// valueText is a context value as text: a string as it is, anything else as
// compact JSON.
function valueText(v) {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

// pageLink is the page's address: a link that opens in a new tab when it is
// http or https, else plain text.
function pageLink(url) {
  let ok = false;
  try {
    const u = new URL(url);
    ok = u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    ok = false;
  }
  if (!ok) return el('span', { class: 'visitor-url', text: url || '—' });
  return el('a', { class: 'visitor-url', href: url, target: '_blank', rel: 'noopener noreferrer', text: url });
}
