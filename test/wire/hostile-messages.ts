// Messages that break a careless encoder, and what every conforming client reports for them.
// Free of vitest, so the Bun and Deno route processes import it as the Node tests do.
import type { MessageEvent } from '@rxsse/core';

/** Newlines in data, CR and CRLF, empty data, a line separator, and data that imitates fields. */
export const HOSTILE_MESSAGES: readonly MessageEvent[] = [
  { data: 'plain', id: '1' },
  { data: 'two\nlines', id: '2', type: 'tick' },
  { data: '\n', id: '3' },
  { data: '', id: '4', type: 'tick' },
  { data: ' leading space and trailing newline\n', id: '5' },
  { data: 'crlf\r\nand cr\rend', id: '6' },
  { data: { nested: { emoji: '😀', sep: '\u2028' } }, id: '7', type: 'tick' },
  { data: 'data: injected\n\nid: 666', id: '8' },
];

/** What every conforming client must report for `messages` (the wire-format round-trip rule). */
export function expectedOf(messages: readonly MessageEvent[]) {
  return messages.map((m) => ({
    type: m.type || 'message',
    data: (typeof m.data === 'string' ? m.data : JSON.stringify(m.data))
      .toWellFormed()
      .replace(/\r\n?/g, '\n'),
    lastEventId: m.id ?? '',
  }));
}
