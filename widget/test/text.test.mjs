// What may become a link in a message, checked with Node's own test runner (npm test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { linkify, safeHref, stripEmphasis } from '../src/text.js';

const links = (text) => linkify(text).filter((piece) => piece.href).map((piece) => piece.href);

test('web addresses and well-known bare domains become https links', () => {
  assert.deepEqual(links('Call or text 988, or chat at 988lifeline.org.'), ['https://988lifeline.org/']);
  assert.deepEqual(links('See https://clinic.example/visit?x=1, then'), ['https://clinic.example/visit?x=1']);
});

test('other schemes, e-mail addresses, doses and file names stay text', () => {
  assert.deepEqual(links('javascript:alert(1) data:text/html,hi javascript://example.com'), []);
  assert.deepEqual(links('write to name@example.com about 2.5mg or notes.txt'), []);
  assert.equal(safeHref('javascript:alert(1)'), null);
  assert.equal(safeHref('/relative'), null);
});

test('the pieces joined are exactly the text', () => {
  const text = 'Visit (https://en.wikipedia.org/wiki/CRPS_(disease)) or example.org!';
  assert.equal(linkify(text).map((piece) => piece.text).join(''), text);
  assert.deepEqual(links(text), ['https://en.wikipedia.org/wiki/CRPS_(disease)', 'https://example.org/']);
});

test('markdown emphasis is not read out', () => {
  assert.equal(stripEmphasis('**Call 911 now** if'), 'Call 911 now if');
});
