/*
 * grainchat widget: a floating chat button and panel for any site.
 *
 *   <script src="https://chat.example.com/widget.js" data-token="…" async></script>
 *
 * Attributes (all optional):
 *   data-token     the visitor's chat token (HS256 JWT signed by the host site).
 *                  Without it the chat relies on chatd's chat_token cookie,
 *                  which browsers send to a framed chatd only when the host
 *                  site and chatd are the same site, or, when chatd accepts
 *                  anonymous visitors (--anonymous-visitors), on an identity
 *                  chatd issues, kept in this site's localStorage; once a
 *                  token is given (here or by setToken), that anonymous
 *                  conversation is merged into the signed-in visitor's.
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
 * fresh token before the old one expires; the frame hands it to its open
 * connection in band (no reconnect), and uses it for the next ones.
 *
 * The host page: the frame tells the support team which page of this site
 * the visitor is on (its address and title) and keeps them told as it
 * changes (a single-page app's history and hash changes, a new title). This
 * script runs on the host page, so it reads them itself and hands them to
 * the frame by postMessage, to chatd's origin only: once the frame exists,
 * and then whenever they change (at popstate and hashchange, and checked
 * once a second, which catches history.pushState and title changes). The
 * frame itself never learns them otherwise (it has no referrer).
 *
 * The frame says "ready" (a postMessage) once its page runs; until then the
 * widget holds its own messages to the frame (posting to a frame that is
 * still on about:blank would only make the browser warn). When no "ready"
 * comes (chatd refuses to be framed by this site because it is not in
 * --allowed-origins, or chatd cannot be reached), the panel says "Chat is
 * unavailable", with its own close button, and the console says why.
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
  host.setAttribute('data-state', 'closed'); // then "ready" (the frame runs) or "unavailable"
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
  var ready = false; // the frame's page said it runs
  var held = []; // messages for the frame until it is ready
  var watchdog = null;
  var failed = null; // the "Chat is unavailable" panel, once shown
  // How long the frame may take to say it is ready: after its load event
  // (the page runs before it, so this only covers the message's delivery),
  // and at most from its creation (a load event that never comes).
  var READY_AFTER_LOAD_MS = 2500;
  var READY_MAX_MS = 10000;

  // The anonymous visitor's token (chatd --anonymous-visitors), kept in this
  // site's own storage: first-party, so it survives reloads where
  // third-party cookies and storage are blocked. The frame gets it in its
  // address's fragment and gives a new one back (grainchat:anonymous).
  var ANON_KEY = 'grainchat.anonymous.' + origin;
  function storedAnon() {
    try {
      return localStorage.getItem(ANON_KEY) || '';
    } catch (e) {
      return '';
    }
  }
  function keepAnon(t) {
    try {
      if (t) localStorage.setItem(ANON_KEY, t);
      else localStorage.removeItem(ANON_KEY);
    } catch (e) {
      /* storage blocked: the identity lasts as long as the page */
    }
  }

  function frameURL() {
    var params = [];
    if (token) params.push('token=' + encodeURIComponent(token));
    var anon = storedAnon();
    if (anon) params.push('anon=' + encodeURIComponent(anon));
    params.push('host=' + encodeURIComponent(location.origin));
    return origin + '/embed/#' + params.join('&');
  }

  function tell(msg) {
    if (!frame) return;
    if (!ready) {
      if (msg.type === 'grainchat:panel' || msg.type === 'grainchat:page') {
        held = held.filter(function (m) {
          return m.type !== msg.type;
        });
      }
      held.push(msg);
      return;
    }
    if (frame.contentWindow) frame.contentWindow.postMessage(msg, origin);
  }

  function frameReady() {
    ready = true;
    host.setAttribute('data-state', 'ready');
    clearTimeout(watchdog);
    if (failed) {
      failed.style.display = 'none';
      frame.style.display = 'block';
    }
    var msgs = held;
    held = [];
    for (var i = 0; i < msgs.length; i++) tell(msgs[i]);
    tell({ type: 'grainchat:panel', open: isOpen });
  }

  function unavailable() {
    if (ready || (failed && failed.style.display !== 'none')) return;
    if (!failed) {
      console.error(
        'grainchat widget: the chat (' + origin + '/embed/) did not load in its frame on ' + location.origin + '. ' +
          'Most likely chatd does not let this site frame it: add ' + location.origin +
          ' to chatd\'s --allowed-origins (CHAT_ALLOWED_ORIGINS; a comma-separated list of origins). ' +
          'Otherwise chatd is unreachable, or this page\'s Content-Security-Policy does not allow frame-src ' + origin + '.'
      );
      failed = document.createElement('div');
      failed.className = 'grainchat-unavailable';
      failed.setAttribute('role', 'alert');
      css(failed, {
        display: 'flex', 'flex-direction': 'column', 'align-items': 'center', 'justify-content': 'center', gap: '10px',
        height: '100%', padding: '24px', 'box-sizing': 'border-box', 'text-align': 'center', color: '#1a2233',
        font: '15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
      });
      var heading = document.createElement('strong');
      heading.textContent = 'Chat is unavailable';
      css(heading, { 'font-size': '18px' });
      var text = document.createElement('p');
      text.textContent = 'The chat cannot be shown on this site right now. Please try again later.';
      css(text, { margin: '0', color: '#5f6b80' });
      var shut = document.createElement('button');
      shut.type = 'button';
      shut.className = 'grainchat-unavailable-close';
      shut.textContent = 'Close';
      css(shut, {
        'margin-top': '6px', padding: '8px 22px', border: '0', 'border-radius': '18px', cursor: 'pointer',
        background: color, color: '#fff', font: '600 14px/1 system-ui, sans-serif',
      });
      shut.addEventListener('click', close);
      failed.appendChild(heading);
      failed.appendChild(text);
      failed.appendChild(shut);
      panel.appendChild(failed);
    }
    frame.style.display = 'none';
    failed.style.display = 'flex';
    host.setAttribute('data-state', 'unavailable');
  }

  // The host page as last told to the frame.
  var told = { url: '', title: '' };
  var watching = false;

  // tellPage hands the host page's address and title to the frame when they
  // changed since it was last told.
  function tellPage() {
    var url = location.href;
    var pageTitle = document.title;
    if (!frame || (url === told.url && pageTitle === told.title)) return;
    told = { url: url, title: pageTitle };
    tell({ type: 'grainchat:page', url: url, title: pageTitle });
  }

  function watchPage() {
    if (watching) return;
    watching = true;
    window.addEventListener('popstate', tellPage);
    window.addEventListener('hashchange', tellPage);
    setInterval(tellPage, 1000);
  }

  function open() {
    if (!frame) {
      frame = document.createElement('iframe');
      frame.title = title;
      frame.src = frameURL();
      frame.setAttribute('referrerpolicy', 'no-referrer');
      css(frame, { border: '0', width: '100%', height: '100%', display: 'block' });
      ready = false;
      frame.addEventListener('load', function () {
        if (ready) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(unavailable, READY_AFTER_LOAD_MS);
      });
      watchdog = setTimeout(unavailable, READY_MAX_MS);
      panel.appendChild(frame);
      tellPage();
      watchPage();
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
    if (msg.type === 'grainchat:ready') frameReady();
    else if (msg.type === 'grainchat:close') close();
    else if (msg.type === 'grainchat:unread' && !isOpen) setBadge(Number(msg.count) || 0);
    else if (msg.type === 'grainchat:anonymous' && typeof msg.token === 'string') keepAnon(msg.token);
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
      // The frame's address keeps its first token (the frame dropped it from
      // its address); the new one travels by postMessage, to chatd's origin
      // only.
      if (frame && token) tell({ type: 'grainchat:token', token: token });
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
