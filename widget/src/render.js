// Conversation entries as DOM nodes, built with el() only (see dom.js).
import { el } from './dom.js';
import { linkify, safeHref } from './text.js';

// Read before each message by screen readers (the bubbles' colours and
// sides say the same thing to sighted visitors).
const SPEAKERS = { user: 'You:', bot: 'Assistant:', notice: 'Notice:' };
const LINK_ATTRS = { target: '_blank', rel: 'noopener noreferrer nofollow' };

export function messageNode(message) {
  const node = el(
    'div',
    { class: `clinic-chat__msg clinic-chat__msg--${message.from}`, 'data-id': message.id },
    el('span', { class: 'clinic-chat__sr-only' }, SPEAKERS[message.from]),
    ' ',
  );
  if (message.text) node.append(el('span', { class: 'clinic-chat__text' }, ...textNodes(message.text)));
  const imageHref = message.image && safeHref(message.image);
  if (imageHref) {
    node.append(el('a', { ...LINK_ATTRS, href: imageHref, class: 'clinic-chat__link clinic-chat__image-link' }, 'Open image'));
  }
  if (message.pending) node.append(pendingNode());
  return node;
}

function pendingNode() {
  return el('span', { class: 'clinic-chat__pending' }, 'Sending…');
}

// The replies offered with a bot message; a reply's payload is only ever
// sent, never shown.
export function quickRepliesNode(messageId, replies, onChoose) {
  const group = el('div', {
    class: 'clinic-chat__quick-replies',
    role: 'group',
    'aria-label': 'Suggested replies',
    'data-for': messageId,
  });
  for (const reply of replies) {
    const button = el('button', { type: 'button', class: 'clinic-chat__quick-reply' }, reply.title);
    button.addEventListener('click', () => onChoose(reply));
    group.append(button);
  }
  return group;
}

function textNodes(text) {
  return linkify(text).map((piece) =>
    piece.href ? el('a', { ...LINK_ATTRS, href: piece.href, class: 'clinic-chat__link' }, piece.text) : piece.text,
  );
}
