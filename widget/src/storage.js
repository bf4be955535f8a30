// The conversation is kept per tab in sessionStorage: it survives reloads
// and page changes on the site, and ends with the tab. Never localStorage or
// cookies: it can hold health details on a shared computer.

// Keeps the stored JSON far below the browsers' ~5 MB quota.
const MAX_MESSAGES = 200;
const SENDERS = ['user', 'bot', 'notice'];

export function storageKey(server) {
  return 'clinic-chat:' + server;
}

// { state, save(), reset() }. state is one object shared by the connection
// and the UI: { open, token, revoke, messages: [{ id, from, text?, image?,
// quickReplies?, pending? }], outbox: [{ id, message }] }. revoke holds the
// token of a cleared conversation until the server has ended it.
export function openStore(server) {
  const key = storageKey(server);
  const state = { ...emptyState(), ...read(key) };
  return {
    state,
    save() {
      if (state.messages.length > MAX_MESSAGES) state.messages.splice(0, state.messages.length - MAX_MESSAGES);
      write(key, state);
    },
    // Forgets the conversation but not whether the panel is open; its token
    // is kept only to ask the server to end that conversation.
    reset() {
      Object.assign(state, emptyState(), { open: state.open, revoke: state.token || state.revoke });
      write(key, state);
    },
  };
}

function emptyState() {
  return { open: false, token: null, revoke: null, messages: [], outbox: [] };
}

// Whatever was stored, only well-formed parts are taken back: a damaged or
// old entry must not break the widget.
function read(key) {
  let stored;
  try {
    stored = JSON.parse(window.sessionStorage.getItem(key));
  } catch (error) {
    return {};
  }
  if (!stored || typeof stored !== 'object') return {};
  return {
    open: stored.open === true,
    token: typeof stored.token === 'string' ? stored.token : null,
    revoke: typeof stored.revoke === 'string' ? stored.revoke : null,
    messages: arrayOf(stored.messages, (m) => typeof m.id === 'string' && SENDERS.includes(m.from)),
    outbox: arrayOf(stored.outbox, (item) => typeof item.id === 'string' && typeof item.message === 'string'),
  };
}

function arrayOf(value, isValid) {
  return Array.isArray(value) ? value.filter((item) => item && typeof item === 'object' && isValid(item)) : [];
}

// Storage can be disabled or full; the chat then still works for this page.
function write(key, state) {
  try {
    window.sessionStorage.setItem(key, JSON.stringify(state));
  } catch (error) {
    /* nothing to do: the conversation stays in memory */
  }
}
