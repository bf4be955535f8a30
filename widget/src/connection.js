// The socket.io conversation with the Rasa server: the session token
// handshake, the outbox, and turning bot_uttered payloads into messages.
import { io } from 'socket.io-client';
import { safeHref, stripEmphasis } from './text.js';

// After the server dropped or refused us, socket.io stops retrying; a
// visitor should not have to reload the page, so try again after this long.
const RETRY_AFTER_REFUSAL_MS = 5000;
const FALLBACK_ERROR = 'Something went wrong. Please try again.';

// on: { state(name, sessionId?), bot(message), notice(text), sent(id) }.
// state names: 'connecting', 'connected' (session confirmed), 'reconnecting'.
export function createConnection(server, store, on) {
  const socket = io(server, {
    path: '/socket.io',
    transports: ['websocket', 'polling'],
    // engine.io-client 6.6 moves on to polling only with this set; without
    // it a proxy that blocks websockets would fail every attempt.
    tryAllTransports: true,
    reconnection: true,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 5000,
  });
  // Messages may only be sent once this connection's session is confirmed.
  let confirmed = false;
  let retryTimer = null;

  socket.on('connect', () => {
    confirmed = false;
    // After "Clear chat" the old token goes along once, so the server ends that
    // conversation and the token resumes nothing any more.
    socket.emit('session_request', {
      session_token: store.state.token || null,
      revoke_token: store.state.revoke || null,
    });
  });

  // A stored token that the server does not accept silently gets a new
  // session here; the widget simply goes on with the new token.
  socket.on('session_confirm', (data) => {
    if (!data || typeof data.session_token !== 'string') return;
    store.state.token = data.session_token;
    store.state.revoke = null;
    store.save();
    confirmed = true;
    on.state('connected', String(data.session_id || ''));
    flush();
  });

  socket.on('bot_uttered', (data) => {
    const message = botMessage(data);
    if (message) on.bot(message);
  });

  socket.on('error', (data) => {
    const text = data && typeof data.message === 'string' && data.message.trim();
    on.notice(text || FALLBACK_ERROR);
  });

  socket.on('connect_error', () => {
    on.state('reconnecting');
    retryIfAbandoned();
  });

  socket.on('disconnect', (reason) => {
    confirmed = false;
    if (reason === 'io client disconnect') return; // our own restart()
    on.state('reconnecting');
    retryIfAbandoned();
  });

  function retryIfAbandoned() {
    if (socket.active) return; // socket.io is already reconnecting
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => socket.connect(), RETRY_AFTER_REFUSAL_MS);
  }

  // Sends queued messages in order, as long as the session is confirmed.
  function flush() {
    const outbox = store.state.outbox;
    while (confirmed && socket.connected && outbox.length) {
      const item = outbox.shift();
      store.save();
      socket.emit('user_uttered', { message: item.message });
      on.sent(item.id);
    }
  }

  return {
    // Queues first (in sessionStorage), so nothing typed offline is lost.
    send(id, message) {
      store.state.outbox.push({ id, message });
      store.save();
      flush();
    },
    // A new connection that asks for a session with whatever token the store
    // now holds: after a reset, none, so the server starts a new conversation.
    restart() {
      clearTimeout(retryTimer);
      confirmed = false;
      socket.disconnect();
      on.state('connecting');
      socket.connect();
    },
  };
}

// { text, image, quickReplies } from one bot_uttered payload, or null for
// anything the widget does not show (custom JSON, empty texts).
function botMessage(data) {
  if (!data || typeof data !== 'object') return null;
  const text = typeof data.text === 'string' ? stripEmphasis(data.text).trim() : '';
  const attachment = data.attachment;
  const isImage = attachment && attachment.type === 'image' && attachment.payload;
  const image = isImage && typeof attachment.payload.src === 'string' ? safeHref(attachment.payload.src) : null;
  if (!text && !image) return null;
  return { text, image, quickReplies: quickReplies(data.quick_replies) };
}

function quickReplies(replies) {
  if (!Array.isArray(replies)) return [];
  return replies
    .filter((reply) => reply && typeof reply.title === 'string' && reply.title.trim())
    .map((reply) => ({
      title: reply.title.trim(),
      payload: typeof reply.payload === 'string' && reply.payload ? reply.payload : reply.title,
    }));
}
