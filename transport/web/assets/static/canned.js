// Canned replies: short saved replies shared by the staff team
// (docs/PROTOCOL.md, "Support desk"). In the composer, `/` and the start of a
// name opens a menu of the matching replies; Enter, Tab or a click inserts
// the chosen one's text in place of `/name`. The dialog lists them and
// creates, edits and deletes them. The list comes from the server
// ({"type":"canned"}) when the page connects, when the dialog opens and
// each time the menu opens, so colleagues' edits show.

import { $, el } from './ui.js';

// The token being typed: `/` at the start or after white space, then the
// start of a name, right before the caret.
const TOKEN = /(^|\s)\/([A-Za-z0-9_-]{0,32})$/;
const MENU_SIZE = 8;
const ANSWER_MS = 5000;

export class CannedReplies {
  // send writes a frame (false when not connected); input is the
  // composer's textarea; onInserted runs after an insertion (resize, count).
  constructor({ send, input, onInserted }) {
    this.send = send;
    this.input = input;
    this.onInserted = onInserted || (() => {});
    this.replies = [];
    this.matches = [];
    this.active = 0;
    this.asked = 0; // when the list was asked for, until its answer
    this.saving = false; // a save or delete awaits its answer
    this.editing = null; // the id of the reply in the form (null: a new one)
    this.menu = $('canned-menu');
    this.dialog = $('canned-dialog');

    this.input.addEventListener('input', () => this.update());
    this.input.addEventListener('click', () => this.update());
    this.input.addEventListener('blur', () => setTimeout(() => this.close(), 150));
    $('canned-open').addEventListener('click', () => this.openDialog());
    $('canned-close').addEventListener('click', () => this.dialog.close());
    $('canned-save').addEventListener('click', () => this.save());
    $('canned-delete').addEventListener('click', () => this.remove());
    $('canned-new').addEventListener('click', () => this.edit(null));
  }

  // refresh asks for the list, unless an answer is on its way (for at most
  // ANSWER_MS: an answer lost with its socket does not stop later ones);
  // fresh: a new socket, where no answer is on its way.
  refresh(fresh = false) {
    if (!fresh && this.asked && Date.now() - this.asked < ANSWER_MS) return;
    if (this.send({ type: 'canned' })) this.asked = Date.now();
  }

  // frame takes a canned frame: the whole list, after any change.
  frame(f) {
    this.asked = 0;
    this.replies = Array.isArray(f.replies) ? f.replies : [];
    if (this.saving) {
      this.saving = false;
      this.edit(null);
    }
    this.renderList();
    if (!this.menu.hidden) this.update();
  }

  // error takes an error frame while a save or delete is on its way; true
  // when it was the answer to it (shown in the dialog).
  error(f) {
    if (!this.saving || f.client_msg_id || f.conversation_id) return false;
    this.saving = false;
    let text = f.message || 'The canned reply could not be saved.';
    if (f.code === 'name_taken') text = 'Another canned reply already has that name.';
    else if (f.code === 'canned_not_found') text = 'That canned reply was deleted meanwhile.';
    this.showError(text);
    if (f.code === 'canned_not_found') this.refresh();
    return true;
  }

  // --- the composer's menu ----------------------------------------------

  token() {
    const before = this.input.value.slice(0, this.input.selectionStart ?? this.input.value.length);
    const m = TOKEN.exec(before);
    if (!m) return null;
    return { start: before.length - m[2].length - 1, end: before.length, prefix: m[2].toLowerCase() };
  }

  update() {
    const t = this.token();
    if (!t) {
      this.close();
      return;
    }
    if (this.menu.hidden) this.refresh(); // the menu opens: the list again, for colleagues' edits
    const starts = this.replies.filter((r) => r.name.startsWith(t.prefix));
    const contains = this.replies.filter((r) => !r.name.startsWith(t.prefix) && r.name.includes(t.prefix));
    this.matches = [...starts, ...contains].slice(0, MENU_SIZE);
    this.active = Math.min(this.active, Math.max(0, this.matches.length - 1));
    this.renderMenu();
  }

  renderMenu() {
    if (!this.matches.length) {
      const hint = this.replies.length ? 'No canned reply by that name.' : 'No canned replies yet: add some with the / button.';
      this.menu.replaceChildren(el('li', { class: 'canned-hint', text: hint }));
      this.menu.hidden = false;
      return;
    }
    this.menu.replaceChildren(
      ...this.matches.map((r, i) => {
        const li = el(
          'li',
          { role: 'option', class: 'canned-option', 'aria-selected': i === this.active ? 'true' : 'false', dataset: { name: r.name } },
          el('span', { class: 'canned-name', text: '/' + r.name }),
          el('span', { class: 'canned-preview', text: r.body.replace(/\s+/g, ' ') }),
        );
        // mousedown, not click: the textarea keeps its focus and caret.
        li.addEventListener('mousedown', (ev) => {
          ev.preventDefault();
          this.insert(r);
        });
        return li;
      }),
    );
    this.menu.hidden = false;
  }

  close() {
    this.menu.hidden = true;
    this.matches = [];
    this.active = 0;
  }

  // key handles a keydown in the composer while the menu is open; true
  // when it used the key (the composer must not act on it).
  key(ev) {
    if (this.menu.hidden) return false;
    switch (ev.key) {
      case 'ArrowDown':
      case 'ArrowUp':
        if (!this.matches.length) return false;
        this.active = (this.active + (ev.key === 'ArrowDown' ? 1 : this.matches.length - 1)) % this.matches.length;
        this.renderMenu();
        return true;
      case 'Enter':
      case 'Tab':
        if (!this.matches.length || ev.shiftKey) return false;
        this.insert(this.matches[this.active]);
        return true;
      case 'Escape':
        this.close();
        return true;
      default:
        return false;
    }
  }

  // insert puts reply's text in place of the `/name` being typed.
  insert(reply) {
    const t = this.token();
    const v = this.input.value;
    const start = t ? t.start : this.input.selectionStart;
    const end = t ? t.end : this.input.selectionEnd;
    this.input.value = v.slice(0, start) + reply.body + v.slice(end);
    const caret = start + reply.body.length;
    this.input.setSelectionRange(caret, caret);
    this.close();
    this.input.focus();
    this.onInserted();
  }

  // --- the dialog ---------------------------------------------------------

  openDialog() {
    this.refresh();
    this.edit(null);
    this.renderList();
    if (!this.dialog.open) this.dialog.showModal();
    $('canned-name').focus();
  }

  renderList() {
    $('canned-empty').hidden = this.replies.length > 0;
    $('canned-list').replaceChildren(
      ...this.replies.map((r) =>
        el(
          'li',
          { class: 'canned-item', dataset: { id: String(r.id), name: r.name } },
          el(
            'div',
            { class: 'canned-item-main' },
            el('span', { class: 'canned-name', text: '/' + r.name }),
            el('span', { class: 'canned-preview', text: r.body }),
          ),
          el('button', { type: 'button', class: 'link', text: 'Edit', 'aria-label': `Edit /${r.name}`, onclick: () => this.edit(r) }),
        ),
      ),
    );
  }

  edit(reply) {
    this.editing = reply ? reply.id : null;
    $('canned-legend').textContent = reply ? `Edit /${reply.name}` : 'New canned reply';
    $('canned-name').value = reply ? reply.name : '';
    $('canned-body').value = reply ? reply.body : '';
    $('canned-delete').hidden = !reply;
    $('canned-new').hidden = !reply;
    $('canned-error').hidden = true;
  }

  save() {
    const name = $('canned-name').value.trim().toLowerCase();
    const body = $('canned-body').value.trim();
    if (!/^[a-z0-9_-]{1,32}$/.test(name)) {
      this.showError('A name is 1 to 32 letters, digits, - or _.');
      return;
    }
    if (!body) {
      this.showError('Write the text of the reply.');
      return;
    }
    const f = { type: 'canned_save', name, body };
    if (this.editing !== null) f.id = this.editing;
    if (!this.send(f)) {
      this.showError('Not connected; try again in a moment.');
      return;
    }
    this.saving = true;
    $('canned-error').hidden = true;
  }

  remove() {
    if (this.editing === null) return;
    if (!this.send({ type: 'canned_delete', id: this.editing })) {
      this.showError('Not connected; try again in a moment.');
      return;
    }
    this.saving = true;
  }

  showError(text) {
    const e = $('canned-error');
    e.textContent = text;
    e.hidden = false;
  }
}
