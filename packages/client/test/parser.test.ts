// The client's parser against the WHATWG transcription the encoder is tested with
// (test/wire/oracle.ts): WPT vectors, then any stream of hostile lines cut into any chunks; and
// against eventsource-parser, an implementation of its own, on bytes that need not be UTF-8.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostileString } from '../../../test/wire/arbitraries.js';
import { type Interpretation, interpret } from '../../../test/wire/oracle.js';
import { byteByByte, decodeChunks, parseWithLibrary, splitBytes } from '../../../test/wire/parsers.js';
import { SseEventError } from '../src/errors.js';
import { createParser } from '../src/parser.js';

const utf8 = new TextEncoder();

/** Byte chunks through one streaming TextDecoder into the parser, as the client reads a body. */
function parse(chunks: Uint8Array[], lastEventId = ''): Interpretation {
  const result: Interpretation = { events: [], retry: undefined, lastEventId };
  const parser = createParser(
    (event) => result.events.push(event),
    (ms) => {
      result.retry = ms;
    },
    lastEventId,
  );
  const decoder = new TextDecoder();
  for (const chunk of chunks) parser.feed(decoder.decode(chunk, { stream: true }));
  result.lastEventId = parser.lastEventId ?? lastEventId;
  return result;
}

const vectors: Array<[name: string, stream: string]> = [
  [
    'event-data',
    'data:msg\ndata: msg\n\n:\nfalsefield:msg\n\nfalsefield:msg\nData:data\n\ndata\n\ndata:end\n\n',
  ],
  ['format-bom', '\uFEFFdata:1\n\n\uFEFFdata:2\n\ndata:3\n\n'],
  ['format-bom-2', '\uFEFF\uFEFFdata:1\n\ndata:2\n\ndata:3\n\n'],
  ['format-comments', `data:1\r:\0\n:\r\ndata:2\n:${'x'.repeat(2048)}\rdata:3\n:data:fail\r:x\ndata:4\n\n`],
  ['format-field-data', 'data:\n\ndata\ndata\n\ndata:test'],
  [
    'format-field-parsing',
    'data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n',
  ],
  ['format-field-id-3', 'id: 1\ndata: 1\n\ndata: 2\n\nid: 2\ndata:3\n\nid:\ndata:4\n\nid\ndata:5\n\n'],
  ['format-field-id-null', 'id: 1\ndata: a\n\nid: x\0x\nretry: 200\ndata: hello\n\n'],
  ['format-field-retry', 'retry:03000\nretry:1000x\nretry: 1 \nretry:-1\nretry\ndata:x\n\n'],
  ['format-data-before-final-empty-line', 'retry:1000\ndata:test1\n\nid:test\ndata:test2'],
  ['format-leading-space', 'data:\ttest\rdata: \ndata:test\n\n'],
  ['format-newlines', 'data:test\r\ndata\ndata:test\r\n\r\n'],
  ['id-only block', 'id: 42\n\n:\n\n'],
  ['lone CR blank line at end of stream', 'data:1\r\r'],
  ['event types', 'event:test\ndata:x\n\ndata:x\n\nevent: \ndata:data\n\n'],
];

describe('parser: WPT vectors, whole and byte by byte', () => {
  for (const [name, stream] of vectors) {
    it(name, () => {
      const bytes = utf8.encode(stream);
      const expected = interpret(bytes);
      expect(parse([bytes])).toEqual(expected);
      expect(parse(byteByByte(bytes))).toEqual(expected);
    });
  }
});

/** Lines a server (or an attacker) might send, with every line ending. */
const line = fc.oneof(
  fc.constantFrom('', ':', ': comment', 'data', 'id', 'event', 'retry', 'retry: 1', 'retry:0300', 'id:'),
  fc
    .tuple(fc.constantFrom('data', 'data ', 'Data', 'id', 'event', 'retry', ''), hostileString(12))
    .map(([field, value]) => `${field}:${value}`),
  hostileString(12),
);
const stream = fc
  .array(fc.tuple(line, fc.constantFrom('\n', '\r', '\r\n')), { maxLength: 30 })
  .map((lines) => lines.map(([text, end]) => text + end).join(''));

describe('parser: property, against the oracle', () => {
  it('reports what the spec algorithm dispatches, however the bytes are cut', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 8 }), (text, cuts) => {
        const bytes = utf8.encode(text);
        expect(parse(splitBytes(bytes, cuts))).toEqual(interpret(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('dispatches what eventsource-parser does, on any bytes cut anywhere', () => {
    // Raw bytes between the lines: broken and split UTF-8 sequences, stray BOMs, CRs and LFs.
    const junk = fc.uint8Array({ maxLength: 6 }).map((bytes) => Array.from(bytes));
    const bodies = fc
      .array(fc.tuple(stream, junk), { maxLength: 4 })
      .map((parts) => Uint8Array.from(parts.flatMap(([text, bytes]) => [...utf8.encode(text), ...bytes])));
    fc.assert(
      fc.property(bodies, fc.array(fc.nat(), { maxLength: 8 }), (body, cuts) => {
        // It holds back a CR that ends its input (a CRLF may follow): a final LF lets it go, for both.
        const bytes = Uint8Array.from([...body, 10]);
        const chunks = splitBytes(bytes, cuts);
        const library = parseWithLibrary(decodeChunks(chunks));
        const ours = parse(chunks);
        // It forgets an id at every dispatch, so a later event's id can differ; type and data cannot.
        const seen = ({ events, retry }: Interpretation) => ({
          events: events.map(({ type, data }) => ({ type, data })),
          retry,
        });
        expect(seen(ours)).toEqual(seen(library));
      }),
      { numRuns: 2000 },
    );
  });

  it('takes a CR and an LF with an empty chunk between them as one line end', () => {
    const chunks = ['data: a\r', '', '\ndata: b\r\n\r', '', '\n'];
    const events: unknown[] = [];
    const parser = createParser(
      (event) => events.push(event),
      () => {},
    );
    for (const chunk of chunks) parser.feed(chunk);
    expect(events).toEqual(interpret(chunks.join('')).events);
  });

  it('keeps the resume point on a reconnected stream whose first block has no id (as Chromium does)', () => {
    // The spec read literally starts each stream's id buffer at "": the blank line would reset it.
    const bytes = utf8.encode(': hello\n\ndata: next\n\n');
    expect(interpret(bytes, '7').events).toEqual([{ type: 'message', data: 'next', lastEventId: '' }]);
    expect(parse([bytes], '7').events).toEqual([{ type: 'message', data: 'next', lastEventId: '7' }]);
  });
});

describe('parser: long lines', () => {
  it("counts no comment against maxLength, however many chunks it comes in (a proxy's padding)", () => {
    const events: { data: string }[] = [];
    const parser = createParser(
      (event) => events.push(event),
      () => {},
      undefined,
      64,
    );
    parser.feed(`:${'x'.repeat(1000)}`);
    parser.feed(`${'x'.repeat(1000)}\n`);
    parser.feed('data: ok\n\n');
    expect(events.map((e) => e.data)).toEqual(['ok']);
  });

  it('counts the id an event carries from its event line, before any data line comes', () => {
    // 17 characters of line and a resume id of 20: 37, past 32, though no data has come yet.
    const line = `event: ${'t'.repeat(10)}\n`;
    expect(() =>
      createParser(
        () => {},
        () => {},
        'i'.repeat(20),
        32,
      ).feed(line),
    ).toThrow(SseEventError);
    // Without an id it fits.
    expect(() =>
      createParser(
        () => {},
        () => {},
        undefined,
        32,
      ).feed(line),
    ).not.toThrow();
  });

  it('counts the id and the type of an event begun by its event line toward any other line of it', () => {
    // A line of 23 characters beside a type of 1 and an id of 10: 34, past 32.
    const parser = createParser(
      () => {},
      () => {},
      'i'.repeat(10),
      32,
    );
    parser.feed('event: t\n');
    expect(() => parser.feed(`x: ${'y'.repeat(20)}\n`)).toThrow(SseEventError);
    // Outside an event the same line counts no id: 23.
    expect(() =>
      createParser(
        () => {},
        () => {},
        'i'.repeat(10),
        32,
      ).feed(`x: ${'y'.repeat(20)}\n`),
    ).not.toThrow();
  });

  it('counts a line cut inside its field name no more than it counts once whole', () => {
    // Each stream cut at "|", where the line has not told its field yet; none passes the limit whole.
    const cases: [stream: string, resumeId: string | undefined, max: number][] = [
      // Its longest line is 13 characters with what it holds ("data:xy": 7 + a type of 6; "id:7": 4 +
      // 3 of data + 6), and so is "event: x" (8 + 3 of data + an id of 1): the type of 6 it replaces
      // is not its own. Cut after "even", which may still become "event", it counts no more.
      ['event: abcdef\ndata:xy\nid:7\neven|t: x\n\n', undefined, 13],
      // "events" is no event line: outside an event it counts no resume id, whole or cut after "event".
      ['event|s: 1\n\nid: 1\ndata: own id\n\n', 'i'.repeat(40), 32],
    ];
    for (const [stream, resumeId, max] of cases) {
      const whole = stream.replace('|', '');
      for (const chunks of [[whole], stream.split('|')]) {
        const events: unknown[] = [];
        const parser = createParser(
          (event) => events.push(event),
          () => {},
          resumeId,
          max,
        );
        for (const chunk of chunks) parser.feed(chunk);
        expect(events, chunks.join(' | ')).toEqual(interpret(whole).events);
      }
    }
  });

  it('takes a long line in many small chunks without reading what it holds of it again at each chunk', async () => {
    // 8 MiB in 8,192 chunks: a parser that looks into the line it holds at every chunk copies it
    // whole each time (V8 flattens a string built by `+=` when it is read), some 32 GB in all.
    const chunk = 'x'.repeat(1024);
    const events: { data: string; lastEventId: string }[] = [];
    const parser = createParser(
      (event) => events.push(event),
      () => {},
      undefined,
      16 * 2 ** 20,
    );
    for (const head of ['id: 7\n', 'i', 'd: 8\ndata: ']) parser.feed(head);
    for (let i = 0; i < 8192; i++) {
      parser.feed(chunk);
      // As a body arrives: between reads, so that the test's timeout can end a parse that takes minutes.
      if (i % 256 === 0) await new Promise(setImmediate);
    }
    parser.feed('\n\n');
    expect(events.map((e) => [e.data.length, e.lastEventId])).toEqual([[8 * 2 ** 20, '8']]);
  });
});
