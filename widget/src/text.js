// Message text to display pieces. Pure functions (no DOM), so the rules that
// decide what may become a link are easy to read and to test.

// Only well-known top-level domains make a bare domain a link, so that
// "Dr.Smith", "notes.txt" or "2.5mg" stay text while "988lifeline.org" works.
const TLDS = 'com|org|net|gov|edu|mil|int|info|health|care|clinic|us|uk|ca|au|nz|ie|io|co|me|app';
const URL_CHARS = '[^\\s<>"\'`]';
const LINK_SOURCE =
  `https?:\\/\\/${URL_CHARS}+` +
  `|(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+(?:${TLDS})\\b(?:[/?#]${URL_CHARS}*)?`;
// A bare domain glued to these is part of something else: an email address
// (name@example.com), a path, or another scheme (javascript://example.com).
const NOT_BEFORE_BARE = /[\w@.\-/:]/;
const TRAILING_PUNCTUATION = '.,;:!?\'"*';

// Rasa texts may carry markdown emphasis; read aloud, "**" is noise.
export function stripEmphasis(text) {
  return text.replace(/\*\*([^*\n]+)\*\*/g, '$1');
}

// The URL as an absolute http(s) href, or null for anything else
// (javascript:, data:, relative or malformed URLs).
export function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch (error) {
    return null;
  }
}

// Splits text into [{ text }, { text, href }, ...] pieces in order; joined,
// the pieces' text is exactly the input.
export function linkify(text) {
  const pieces = [];
  const pattern = new RegExp(LINK_SOURCE, 'gi');
  let plainStart = 0;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    const raw = trimTrailing(match[0]);
    const start = match.index;
    const end = start + raw.length;
    const href = linkTarget(raw, text[start - 1], text[end]);
    if (!href) continue;
    if (start > plainStart) pieces.push({ text: text.slice(plainStart, start) });
    pieces.push({ text: raw, href });
    plainStart = end;
    pattern.lastIndex = end;
  }
  if (plainStart < text.length) pieces.push({ text: text.slice(plainStart) });
  return pieces;
}

function linkTarget(raw, before, after) {
  if (/^https?:\/\//i.test(raw)) return safeHref(raw);
  const glued = (before && NOT_BEFORE_BARE.test(before)) || after === '@';
  return glued ? null : safeHref('https://' + raw);
}

// "See 988lifeline.org." links "988lifeline.org"; a closing parenthesis is
// kept only when the URL itself opened one (Wikipedia-style URLs).
function trimTrailing(url) {
  let end = url.length;
  while (end > 0) {
    const last = url[end - 1];
    const kept = url.slice(0, end);
    const unbalanced = last === ')' && count(kept, '(') < count(kept, ')');
    if (!TRAILING_PUNCTUATION.includes(last) && !unbalanced) break;
    end -= 1;
  }
  return url.slice(0, end);
}

function count(text, char) {
  return text.split(char).length - 1;
}
