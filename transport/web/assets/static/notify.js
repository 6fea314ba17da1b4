// Notifications for staff (the inbox): a beep and a desktop notification
// when a visitor writes.
//
// The tab's title counts the unread messages ("(3) Inbox — grainchat",
// admin.js). On top of it:
//   - Sound: a short beep (WebAudio, no file) at each new visitor message,
//     unless its conversation is on screen in a visible tab. Off by default;
//     the top bar's toggle turns it on, remembered in localStorage. Browsers
//     let a page play sound only after an input on it: the toggle's click (or
//     the first input after a reload) unlocks it.
//   - Desktop notifications (the Notification API), for new visitor messages
//     in conversations that are the agent's or unassigned, unless on screen in
//     a visible tab. The browser asks for permission only from a click on
//     "Enable notifications" (shown while the permission is neither granted
//     nor denied); a click on a notification brings the conversation up.

// notifyDecision says what a new message frame deserves: {sound, desktop}.
// entry is the page's inbox entry of its conversation (null: not listed, in
// which case it may be unassigned: it is told); openId the conversation on
// screen; visible whether the tab is.
export function notifyDecision({ message, me, entry, openId, visible }) {
  const none = { sound: false, desktop: false };
  if (!message || message.sender_is_admin || (me && message.sender_id === me.id)) return none;
  if (visible && message.conversation_id === openId) return none;
  // Read already (on another tab or device). A message frame is otherwise
  // new: a socket gets each message once, and its inbox_update may come
  // first (so the entry's last_seq says nothing).
  if (entry && message.seq <= (entry.read_seq || 0)) return none;
  const a = entry ? entry.assignee : null;
  return { sound: true, desktop: !a || (!!me && a.id === me.id) };
}

const SOUND_KEY = 'grainchat.inbox.sound';

// Beeper plays the beep, when on.
export class Beeper {
  constructor() {
    this.on = false;
    try {
      this.on = localStorage.getItem(SOUND_KEY) === 'on';
    } catch {
      // denied: off
    }
    this.ctx = null;
    if (this.on) {
      // Browsers start audio only from an input: the first one after a reload.
      const unlock = () => {
        this.unlock();
        for (const type of ['pointerdown', 'keydown']) removeEventListener(type, unlock, true);
      };
      for (const type of ['pointerdown', 'keydown']) addEventListener(type, unlock, true);
    }
  }

  // set turns the sound on or off (from a click: it unlocks audio).
  set(on) {
    this.on = on;
    try {
      localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
    } catch {
      // denied: for this page only
    }
    if (on) this.unlock();
  }

  unlock() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    if (!this.ctx) this.ctx = new AC();
    if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
  }

  // beep plays a short two-tone beep; false when off (or no audio).
  beep() {
    if (!this.on) return false;
    if (!this.ctx) this.unlock();
    const ctx = this.ctx;
    if (!ctx) return false;
    const t = ctx.currentTime;
    const gain = ctx.createGain();
    gain.connect(ctx.destination);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
    const osc = ctx.createOscillator();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1320, t + 0.12);
    osc.connect(gain);
    osc.start(t);
    osc.stop(t + 0.32);
    return true;
  }
}

// notificationPermission is the page's Notification permission: 'granted',
// 'denied', 'default', or 'unsupported'.
export function notificationPermission() {
  return 'Notification' in window ? window.Notification.permission : 'unsupported';
}

// showNotification shows a desktop notification for a visitor's message;
// onClick brings its conversation up.
export function showNotification(message, onClick) {
  if (notificationPermission() !== 'granted') return null;
  let text = String(message.message || '').replace(/\s+/g, ' ').trim();
  if (text.length > 200) text = text.slice(0, 200) + '…';
  try {
    const n = new window.Notification(message.sender_name || 'A visitor', {
      body: text,
      tag: `grainchat-${message.conversation_id}`,
      icon: '/static/icon.svg',
    });
    n.addEventListener('click', () => {
      window.focus();
      onClick();
      n.close();
    });
    return n;
  } catch {
    return null; // a browser that allows notifications from service workers only
  }
}
