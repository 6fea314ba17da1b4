/*
 * grainchat widget: a floating chat button and panel for any site.
 *
 *   <script src="https://chat.example.com/widget.js" data-token="…" async></script>
 *
 * Attributes (all optional):
 *   data-token     the visitor's chat token (HS256 JWT signed by the host site).
 *                  Without it the chat relies on chatd's chat_token cookie,
 *                  which browsers send to a framed chatd only when the host
 *                  site and chatd are the same site.
 *   data-title     the button's label (default "Chat with us").
 *   data-position  "right" (default) or "left".
 *   data-color     the button's colour, #rgb or #rrggbb (default #2454d6).
 *   data-open      "true" to open the panel at once.
 *
 * The panel is an iframe of chatd's /embed/ page: chatd's own origin, so the
 * host page cannot read the conversation and the chat's scripts cannot touch
 * the host page. The token travels in the iframe URL's fragment, which is
 * never sent to a server, and the frame removes it from its address at once.
 * The iframe is created on the first open only, so page views that never
 * open the chat open no WebSocket.
 *
 * window.GrainChat: open(), close(), toggle(), setToken(token) — give a
 * fresh token before the old one expires; the chat reconnects with it.
 *
 * This is a classic script (document.currentScript, no module) that builds
 * its elements with DOM calls and styles them through the CSSOM, so it works
 * under a host page's strict Content-Security-Policy as long as that policy
 * allows this script (script-src) and the frame (frame-src) from chatd's
 * origin.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.GrainChat) return;

  var base = new URL(script.src, location.href);
  var origin = base.origin;
  var data = script.dataset;
  var token = data.token || '';
  var title = data.title || 'Chat with us';
  var side = data.position === 'left' ? 'left' : 'right';
  var color = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(data.color || '') ? data.color : '#2454d6';
  var Z = '2147483000';

  var host = document.createElement('div');
  host.setAttribute('data-grainchat', '');
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;

  function css(node, props) {
    for (var k in props) node.style.setProperty(k, props[k]);
    return node;
  }

  var button = document.createElement('button');
  button.type = 'button';
  button.setAttribute('aria-label', title);
  button.setAttribute('aria-expanded', 'false');
  button.className = 'grainchat-button';
  css(button, {
    position: 'fixed', bottom: '20px', 'z-index': Z, display: 'flex', 'align-items': 'center', gap: '8px',
    height: '52px', padding: '0 20px 0 16px', border: '0', 'border-radius': '26px', cursor: 'pointer',
    background: color, color: '#fff', font: '600 15px/1 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
    'box-shadow': '0 6px 24px rgba(0,0,0,.22)',
  });
  button.style.setProperty(side, '20px');
  var icon = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  icon.setAttribute('viewBox', '0 0 24 24');
  icon.setAttribute('width', '22');
  icon.setAttribute('height', '22');
  icon.setAttribute('aria-hidden', 'true');
  var path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('fill', 'currentColor');
  path.setAttribute('d', 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z');
  icon.appendChild(path);
  var label = document.createElement('span');
  label.textContent = title;
  var badge = document.createElement('span');
  badge.className = 'grainchat-badge';
  css(badge, {
    display: 'none', 'min-width': '20px', height: '20px', padding: '0 6px', 'border-radius': '10px',
    background: '#e11d48', color: '#fff', font: '700 12px/20px system-ui, sans-serif', 'text-align': 'center',
  });
  button.appendChild(icon);
  button.appendChild(label);
  button.appendChild(badge);

  var panel = document.createElement('div');
  panel.className = 'grainchat-panel';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', title);
  css(panel, {
    position: 'fixed', 'z-index': Z, display: 'none', overflow: 'hidden', background: '#fff',
    'box-shadow': '0 12px 48px rgba(0,0,0,.28)',
  });

  var narrow = window.matchMedia('(max-width: 480px)');
  function layout() {
    if (narrow.matches) {
      css(panel, { top: '0', bottom: '0', left: '0', right: '0', width: '100%', height: '100%', 'border-radius': '0' });
    } else {
      css(panel, { top: 'auto', bottom: '86px', width: '380px', height: 'min(600px, calc(100vh - 110px))', 'border-radius': '16px' });
      panel.style.setProperty(side, '20px');
      panel.style.setProperty(side === 'left' ? 'right' : 'left', 'auto');
    }
  }
  layout();
  if (narrow.addEventListener) narrow.addEventListener('change', layout);

  var frame = null;
  var isOpen = false;

  function frameURL() {
    return origin + '/embed/' + (token ? '#token=' + encodeURIComponent(token) : '');
  }

  function tell(msg) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(msg, origin);
  }

  function open() {
    if (!frame) {
      frame = document.createElement('iframe');
      frame.title = title;
      frame.src = frameURL();
      frame.setAttribute('referrerpolicy', 'no-referrer');
      css(frame, { border: '0', width: '100%', height: '100%', display: 'block' });
      frame.addEventListener('load', function () {
        tell({ type: 'grainchat:panel', open: isOpen });
      });
      panel.appendChild(frame);
    }
    isOpen = true;
    panel.style.display = 'block';
    button.setAttribute('aria-expanded', 'true');
    if (narrow.matches) button.style.display = 'none';
    setBadge(0);
    remember(true);
    tell({ type: 'grainchat:panel', open: true });
  }

  function close() {
    isOpen = false;
    panel.style.display = 'none';
    button.style.display = 'flex';
    button.setAttribute('aria-expanded', 'false');
    remember(false);
    tell({ type: 'grainchat:panel', open: false });
    button.focus();
  }

  function setBadge(n) {
    badge.textContent = n > 99 ? '99+' : String(n);
    badge.style.display = n > 0 ? 'inline-block' : 'none';
  }

  function remember(on) {
    try {
      if (on) sessionStorage.setItem('grainchat-open', '1');
      else sessionStorage.removeItem('grainchat-open');
    } catch (e) {
      /* storage denied: the panel just starts closed */
    }
  }

  button.addEventListener('click', function () {
    if (isOpen) close();
    else open();
  });

  window.addEventListener('message', function (ev) {
    if (ev.origin !== origin || !frame || ev.source !== frame.contentWindow) return;
    var msg = ev.data || {};
    if (msg.type === 'grainchat:close') close();
    else if (msg.type === 'grainchat:unread' && !isOpen) setBadge(Number(msg.count) || 0);
  });

  root.appendChild(button);
  root.appendChild(panel);

  window.GrainChat = {
    open: open,
    close: close,
    toggle: function () {
      if (isOpen) close();
      else open();
    },
    setToken: function (t) {
      token = String(t || '');
      if (frame) frame.src = frameURL();
    },
  };

  function mount() {
    document.body.appendChild(host);
    var wasOpen = false;
    try {
      wasOpen = sessionStorage.getItem('grainchat-open') === '1';
    } catch (e) {
      /* ignore */
    }
    if (data.open === 'true' || wasOpen) open();
  }
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
