// Entry point: reads the embedding <script> tag's options, builds the widget
// and wires the UI to the connection and the stored conversation.
import { createConnection } from './connection.js';
import { messageNode, quickRepliesNode } from './render.js';
import { openStore } from './storage.js';
import { MAX_MESSAGE_LENGTH, buildUi } from './ui.js';

const TYPING_TIMEOUT_MS = 20000;
// Passing news in the status line ("Connected", "Chat cleared.") then goes.
const STATUS_NOTICE_MS = 4000;
// The character counter appears once a message gets this long.
const COUNTER_FROM = MAX_MESSAGE_LENGTH - 200;

// Only valid while this script is first run, hence read at the top level.
const script = document.currentScript || document.querySelector('script[src*="clinic-widget.js"]');

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();

function start() {
  const server = serverOrigin(script && script.getAttribute('data-server'));
  if (!server) {
    console.error('clinic-chat: the script tag needs data-server="<Rasa server URL>".');
    return;
  }
  if (document.getElementById('clinic-chat')) return; // the script was included twice
  const clinicName = (script.getAttribute('data-clinic-name') || '').trim() || 'Our clinic';
  mount(server, clinicName, new URL('clinic-widget.css', script.src || window.location.href).href);
}

// The socket.io URL must be a bare origin: any path would be taken as a
// socket.io namespace.
function serverOrigin(value) {
  try {
    return value ? new URL(value, window.location.href).origin : null;
  } catch (error) {
    return null;
  }
}

function mount(server, clinicName, stylesheetHref) {
  const store = openStore(server);
  const ui = buildUi(clinicName);
  const { root, launcher, panel, log, typing, input, counter, status } = ui;
  let typingTimer = null;
  let statusTimer = null;
  let connectionLost = false;

  // History is rendered before the root joins the page, so the live log
  // does not read the whole conversation out again after a reload.
  for (const message of store.state.messages) showMessage(message);
  if (store.state.open) setOpen(true);
  root.hidden = true; // until styled, rather than a flash of bare buttons
  loadStylesheet(stylesheetHref, () => {
    root.hidden = false;
    scrollToEnd();
  });
  document.body.append(root);

  const connection = createConnection(server, store, {
    state: onConnectionState,
    bot(message) {
      setTyping(false);
      if (message.quickReplies.length) dismissQuickReplies();
      addMessage({ id: newId(), from: 'bot', ...message });
    },
    notice(text) {
      setTyping(false);
      addMessage({ id: newId(), from: 'notice', text });
    },
    sent(id) {
      const message = store.state.messages.find((m) => m.id === id);
      if (message) delete message.pending;
      store.save();
      const pending = log.querySelector(`[data-id="${CSS.escape(id)}"] .clinic-chat__pending`);
      if (pending) pending.remove();
      setTyping(true);
    },
  });

  launcher.addEventListener('click', () => (store.state.open ? close() : open()));
  ui.closeButton.addEventListener('click', close);
  ui.clearButton.addEventListener('click', clear);
  // Escape in the panel, or on the launcher while the panel is open, closes it.
  root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !event.isComposing && store.state.open) close();
  });
  ui.form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitInput();
  });
  input.addEventListener('keydown', (event) => {
    // Enter sends, Shift+Enter is a new line; never mid-composition (IME).
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitInput();
    }
  });
  input.addEventListener('input', onInputChange);

  window.ClinicChat = { open, close, clear };

  function open() {
    setOpen(true);
    scrollToEnd();
    input.focus();
  }

  function close() {
    setOpen(false);
    launcher.focus();
  }

  function setOpen(isOpen) {
    store.state.open = isOpen;
    store.save();
    panel.hidden = !isOpen;
    root.classList.toggle('clinic-chat--open', isOpen);
    launcher.setAttribute('aria-expanded', String(isOpen));
  }

  // Starts a brand new conversation: nothing of the old one is kept, on the
  // page, in storage or in the server session.
  function clear() {
    store.reset();
    log.textContent = '';
    setTyping(false);
    connection.restart();
    announce('Chat cleared.', STATUS_NOTICE_MS);
    if (store.state.open) input.focus();
  }

  function submitInput() {
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    onInputChange();
    send(text, text);
  }

  // shown is what the log says the visitor sent; for a quick reply it is the
  // button's title while the payload is what goes to the server.
  function send(shown, payload) {
    dismissQuickReplies();
    const id = newId();
    addMessage({ id, from: 'user', text: shown, pending: true });
    connection.send(id, payload);
  }

  function addMessage(message) {
    store.state.messages.push(message);
    store.save();
    showMessage(message);
    scrollToEnd();
  }

  function showMessage(message) {
    log.append(messageNode(message));
    if (message.quickReplies && message.quickReplies.length) {
      log.append(quickRepliesNode(message.id, message.quickReplies, (reply) => send(reply.title, reply.payload)));
    }
  }

  // Only the newest set of suggestions is ever offered. Focus on a removed
  // button would fall back to the page, so it moves to the input instead.
  function dismissQuickReplies() {
    const hadFocus = log.querySelector('.clinic-chat__quick-replies:focus-within');
    for (const group of log.querySelectorAll('.clinic-chat__quick-replies')) group.remove();
    for (const message of store.state.messages) delete message.quickReplies;
    store.save();
    if (hadFocus) input.focus();
  }

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  function setTyping(isTyping) {
    clearTimeout(typingTimer);
    typing.hidden = !isTyping;
    if (isTyping) typingTimer = setTimeout(() => setTyping(false), TYPING_TIMEOUT_MS);
  }

  function onConnectionState(state, sessionId) {
    root.setAttribute('data-state', state);
    if (state === 'connected') {
      root.setAttribute('data-session-id', sessionId);
      if (connectionLost) announce('Connected', STATUS_NOTICE_MS);
      connectionLost = false;
    } else if (state === 'connecting') {
      root.removeAttribute('data-session-id'); // a new session is on its way
    } else if (state === 'reconnecting' && !connectionLost) {
      connectionLost = true;
      announce('Reconnecting…');
    }
  }

  // Writes the status line; a repeated text is re-set after a moment so that
  // screen readers announce it again. clearAfter hides it later, if given.
  function announce(text, clearAfter) {
    clearTimeout(statusTimer);
    if (status.textContent === text) {
      status.textContent = '';
      statusTimer = setTimeout(() => announce(text, clearAfter), 100);
      return;
    }
    status.textContent = text;
    if (clearAfter) statusTimer = setTimeout(() => (status.textContent = ''), clearAfter);
  }

  function onInputChange() {
    // Grows with its content up to the CSS max-height, then scrolls.
    input.style.height = 'auto';
    const borders = input.offsetHeight - input.clientHeight;
    input.style.height = `${input.scrollHeight + borders}px`;
    const length = input.value.length;
    counter.textContent = length >= COUNTER_FROM ? `${length} of ${MAX_MESSAGE_LENGTH} characters` : '';
  }
}

function loadStylesheet(href, done) {
  const existing = Array.from(document.querySelectorAll('link[rel="stylesheet"]')).find((link) => link.href === href);
  if (existing) {
    done();
    return;
  }
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  // Shown unstyled rather than not at all if the stylesheet cannot load.
  link.addEventListener('load', done);
  link.addEventListener('error', done);
  document.head.append(link);
}

function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
