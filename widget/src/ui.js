// The widget's fixed structure (launcher, panel, log, form). Ids, classes,
// roles and texts here are the contract that the tests and README describe.
import { el, icon } from './dom.js';

// The server's limit (MAX_MESSAGE_LENGTH in clinic_assistant/channels/rest.py).
export const MAX_MESSAGE_LENGTH = 5000;

const NOTE =
  'Automated assistant with general information only. In an emergency call 911; ' +
  "in crisis call or text 988. Please don't share medical records here.";
const CHAT_ICON = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z';
const CLOSE_ICON =
  'M6.4 5 5 6.4l5.6 5.6L5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z';

export function buildUi(clinicName) {
  const launcher = el(
    'button',
    { type: 'button', class: 'clinic-chat__launcher', 'aria-expanded': 'false', 'aria-controls': 'clinic-chat-panel' },
    icon(CHAT_ICON),
    el('span', { class: 'clinic-chat__launcher-label' }, 'Chat with us'),
  );
  const clearButton = el('button', { type: 'button', class: 'clinic-chat__clear' }, 'Clear chat');
  const closeButton = el('button', { type: 'button', class: 'clinic-chat__close', 'aria-label': 'Close chat' }, icon(CLOSE_ICON));
  const header = el(
    'div',
    { class: 'clinic-chat__header' },
    el(
      'div',
      { class: 'clinic-chat__titlebar' },
      el('h2', { id: 'clinic-chat-title', class: 'clinic-chat__title' }, clinicName),
      clearButton,
      closeButton,
    ),
    el('p', { class: 'clinic-chat__note' }, NOTE),
  );
  const log = el('div', {
    id: 'clinic-chat-log',
    class: 'clinic-chat__log',
    role: 'log',
    'aria-live': 'polite',
    'aria-relevant': 'additions',
    tabindex: '0',
    'aria-label': 'Conversation',
  });
  // Outside the log and not live: it would otherwise be announced each turn.
  const typing = el(
    'div',
    { class: 'clinic-chat__typing', hidden: true },
    el('span', { class: 'clinic-chat__dots', 'aria-hidden': 'true' }, el('span'), el('span'), el('span')),
    el('span', { class: 'clinic-chat__sr-only' }, 'Assistant is typing…'),
  );
  const status = el('p', { class: 'clinic-chat__status', role: 'status' });
  const input = el('textarea', {
    id: 'clinic-chat-input',
    class: 'clinic-chat__input',
    rows: '1',
    maxlength: MAX_MESSAGE_LENGTH,
    placeholder: 'Type your message…',
    enterkeyhint: 'send',
    'aria-describedby': 'clinic-chat-counter',
  });
  const counter = el('p', { id: 'clinic-chat-counter', class: 'clinic-chat__counter' });
  const form = el(
    'form',
    { class: 'clinic-chat__form' },
    el('label', { for: 'clinic-chat-input', class: 'clinic-chat__sr-only' }, 'Type your message'),
    input,
    el('button', { type: 'submit', class: 'clinic-chat__send' }, 'Send'),
    counter,
  );
  const panel = el(
    'section',
    {
      id: 'clinic-chat-panel',
      class: 'clinic-chat__panel',
      role: 'dialog',
      'aria-modal': 'false',
      'aria-labelledby': 'clinic-chat-title',
      hidden: true,
    },
    header,
    log,
    typing,
    status,
    form,
  );
  const root = el('div', { id: 'clinic-chat', class: 'clinic-chat', 'data-state': 'connecting' }, launcher, panel);
  return { root, launcher, panel, clearButton, closeButton, log, typing, status, form, input, counter };
}
