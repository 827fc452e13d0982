/**
 * One test per row of the table in docs/wire-format.md §2, and per spec example of §1.5. Expectations come
 * from the oracle (a transcription of the WHATWG algorithm); refused inputs must throw the documented
 * error class with the offending field.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type DispatchedEvent, expected, expectedRetry, interpret } from '../../../test/wire/oracle.js';
import { byteByByte, decodeChunks, parseWithLibrary } from '../../../test/wire/parsers.js';
import { type SseField, SseFormatError, SseRangeError } from '../src/encode/errors.js';
import {
  DEFAULT_MAX_DATA_LINES,
  encodeEvent,
  formatComment,
  formatEvent,
  formatRetry,
} from '../src/encode/format.js';
import type { FormatOptions, MessageEvent } from '../src/encode/types.js';

type Message = MessageEvent<unknown>;
const utf8 = new TextEncoder();

/** Every way a client reads a stream here: the oracle (text and bytes) and eventsource-parser. */
function parseAllWays(wire: string, { bytewise = true } = {}) {
  const bytes = utf8.encode(wire);
  const parses = [interpret(wire), interpret(bytes), parseWithLibrary([wire])];
  if (bytewise) parses.push(parseWithLibrary(decodeChunks(byteByByte(bytes))));
  return parses;
}

/** Encodes the messages as one stream and checks every parse reports what the oracle expects. */
function roundTrip(messages: Message[], options: FormatOptions = {}, { bytewise = true } = {}): string {
  const wire = messages.map((message) => formatEvent(message, options)).join('');
  const want = expected(messages, options);
  for (const parsed of parseAllWays(wire, { bytewise })) {
    expect(parsed.events).toEqual(want);
    expect(parsed.retry).toBe(expectedRetry(messages));
  }
  return wire;
}

/** Whether a client reading `wire` reports what the oracle expects for `messages`. */
function reportsExpected(wire: string, messages: Message[]): boolean {
  return isDeepStrictEqual(interpret(wire).events, expected(messages));
}

/** The naive serializer of docs/wire-format.md §2: `event: ${type}\nid: ${id}\ndata: ${data}\n\n`. */
function naive({ type, id, data }: Message): string {
  return `${type ? `event: ${type}\n` : ''}${id === undefined ? '' : `id: ${id}\n`}data: ${String(data)}\n\n`;
}

function expectRefused(
  message: Message,
  options: FormatOptions,
  errorClass: typeof SseFormatError | typeof SseRangeError,
  field: SseField,
) {
  const error = thrown(() => formatEvent(message, options));
  expect(error).toBeInstanceOf(errorClass);
  expect(error).toMatchObject({ field });
  expect(thrown(() => encodeEvent(message, options))).toEqual(error);
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('wire-format.md §2 table', () => {
  it('row 1: data "a\\nb" becomes one data line per line', () => {
    const message = { data: 'a\nb' };
    expect(roundTrip([message])).toBe('data: a\ndata: b\n\n');
    expect(reportsExpected(naive(message), [message])).toBe(false);
  });

  it('row 2: CR and CRLF in data arrive as LF; strict mode throws SseFormatError', () => {
    for (const data of ['a\r\nb', 'a\rb', 'x\r', '\r\r\n\n\r', 'a\r\n\r\nb']) {
      const wire = roundTrip([{ data }]);
      expect(wire).not.toContain('\r');
      expect(reportsExpected(naive({ data }), [{ data }])).toBe(false);
      expectRefused({ data }, { strict: true }, SseFormatError, 'data');
    }
    expect(roundTrip([{ data: 'a\r\nb' }])).toBe('data: a\ndata: b\n\n');
    expect(() => formatEvent({ data: 'a\rb' }, { strict: true })).toThrow(TypeError);
  });

  it('row 3: a trailing newline survives as an empty data line', () => {
    expect(roundTrip([{ data: 'x\n' }])).toBe('data: x\ndata:\n\n');
    expect(reportsExpected(naive({ data: 'x\n' }), [{ data: 'x\n' }])).toBe(false);
  });

  it('row 4: data made of newlines keeps every newline', () => {
    expect(roundTrip([{ data: '\n' }])).toBe('data:\ndata:\n\n');
    expect(roundTrip([{ data: '\n\n' }])).toBe('data:\ndata:\ndata:\n\n');
    expect(reportsExpected(naive({ data: '\n' }), [{ data: '\n' }])).toBe(false);
  });

  it('row 5: empty data still fires an event, with one empty data line', () => {
    expect(roundTrip([{ data: '' }])).toBe('data:\n\n');
    for (const equivalent of ['data\n\n', 'data: \n\n']) {
      expect(interpret(equivalent).events).toEqual(expected([{ data: '' }]));
    }
  });

  it('row 6: data cannot inject a second event', () => {
    const message = { data: 'x\n\ndata: injected' };
    expect(roundTrip([message])).toBe('data: x\ndata:\ndata: data: injected\n\n');
    expect(interpret(naive(message)).events).toHaveLength(2);
  });

  it('row 7: a leading space in data survives (exactly one space after the colon)', () => {
    expect(roundTrip([{ data: ' x' }])).toBe('data:  x\n\n');
    expect(roundTrip([{ data: '  \n x \n' }])).toBe('data:   \ndata:  x \ndata:\n\n');
    expect(reportsExpected('data: x\n\n', [{ data: ' x' }])).toBe(false);
  });

  it('row 8: U+2028, U+2029, U+0085, VT and FF are not line breaks', () => {
    const data = 'line\u2028sep\u2029a\u0085b\vc\fd';
    expect(roundTrip([{ data }])).toBe(`data: ${data}\n\n`);
    const regexSplit = `${data.replace(/^/gm, 'data: ')}\n\n`;
    expect(reportsExpected(regexSplit, [{ data }])).toBe(false);
  });

  it('row 9: NUL in data is sent verbatim', () => {
    expect(roundTrip([{ data: '\0' }])).toBe('data: \0\n\n');
    roundTrip([{ data: 'a\0b\n\0' }]);
  });

  it('row 10: data starting with U+FEFF is verbatim and the stream never starts with a BOM', () => {
    const messages = [{ data: '\uFEFFfirst' }, { data: '\uFEFF\n\uFEFF' }];
    const wire = roundTrip(messages);
    expect(wire.startsWith('data: \uFEFFfirst\n')).toBe(true);
    expect([...encodeEvent(messages[0]!).subarray(0, 3)]).not.toEqual([0xef, 0xbb, 0xbf]);
  });

  it('row 11: lone surrogates in data become U+FFFD; strict mode throws SseFormatError', () => {
    for (const data of ['\uD800', 'a\uDC00b', '\uDBFF\n\uDFFF', 'x\uD83D']) {
      const wire = roundTrip([{ data }]);
      expect(wire.isWellFormed()).toBe(true);
      expect(encodeEvent({ data })).toEqual(utf8.encode(formatEvent({ data })));
      expectRefused({ data }, { strict: true }, SseFormatError, 'data');
    }
    roundTrip([{ data: '\uD83D\uDE00 is a pair' }], { strict: true });
  });

  it('row 12: object data goes through the serializer, which must return a string', () => {
    expect(roundTrip([{ data: { a: 'x\r\ny', b: [1, null] } }])).toBe(
      'data: {"a":"x\\r\\ny","b":[1,null]}\n\n',
    );
    roundTrip([{ data: { nested: { s: '\n' } } }], { serialize: (data) => JSON.stringify(data, null, 2) });
    roundTrip([{ data: 42 }, { data: null }, { data: ['\uD800'] }], { strict: true });
    for (const data of [undefined, () => 1, Symbol('s')]) {
      expectRefused({ data }, {}, SseFormatError, 'data');
    }
    expectRefused({ data: 1n }, {}, SseFormatError, 'data');
    expectRefused({ data: {} }, { serialize: () => 7 as unknown as string }, SseFormatError, 'data');
    const cause = new Error('boom');
    const throwing = () => {
      throw cause;
    };
    expectRefused({ data: {} }, { serialize: throwing }, SseFormatError, 'data');
    expect(thrown(() => formatEvent({ data: {} }, { serialize: throwing }))).toHaveProperty('cause', cause);
  });

  it('row 13: CR, LF or NUL in type throws SseFormatError (no field injection)', () => {
    for (const type of ['a\nid: 666', 'a\r', '\r\n', 'a\0b']) {
      expectRefused({ data: 'x', type }, {}, SseFormatError, 'type');
      expectRefused({ data: 'x', type }, { ids: 'spec', allowReservedTypes: true }, SseFormatError, 'type');
    }
    expect(interpret(naive({ data: 'x', type: 'a\nid: 666' })).lastEventId).toBe('666');
    expectRefused({ data: 'x', type: 5 as unknown as string }, {}, SseFormatError, 'type');
  });

  it('row 14: type "" is the default type and writes no event line', () => {
    const wire = roundTrip([
      { data: 'x', type: '' },
      { data: 'y', type: 'tick' },
      { data: 'z', type: '' },
    ]);
    expect(wire).toBe('data: x\n\nevent: tick\ndata: y\n\ndata: z\n\n');
  });

  it('row 15: types "error" and "open" throw unless allowReservedTypes', () => {
    for (const type of ['error', 'open']) {
      expectRefused({ data: 'x', type }, {}, SseFormatError, 'type');
      roundTrip([{ data: 'x', type }], { allowReservedTypes: true });
    }
    roundTrip([
      { data: 'x', type: 'Error' },
      { data: 'y', type: 'opened' },
      { data: 'z', type: 'message' },
    ]);
  });

  it('row 16: types with spaces round-trip; a lone surrogate in type throws SseFormatError', () => {
    expect(roundTrip([{ data: 'x', type: ' foo ' }])).toBe('event:  foo \ndata: x\n\n');
    roundTrip([
      { data: 'x', type: ' ' },
      { data: 'y', type: '\uFEFF:\u2028\t😀' },
    ]);
    for (const type of ['\uD800', 'a\uDFFF']) expectRefused({ data: 'x', type }, {}, SseFormatError, 'type');
  });

  it('row 17: CR or LF in id throws SseFormatError in both id modes', () => {
    for (const id of ['a\nb', 'a\r', '\r\ndata: x']) {
      expectRefused({ data: 'x', id }, {}, SseFormatError, 'id');
      expectRefused({ data: 'x', id }, { ids: 'spec' }, SseFormatError, 'id');
    }
    const injected = { data: 'x', id: '1\n\ndata: evil' };
    expect(interpret(naive(injected)).events[0]?.data).toBe('evil\nx');
  });

  it('row 18: NUL in id throws SseFormatError (clients would silently keep the old id)', () => {
    for (const id of ['\0', 'x\0', '\0x']) {
      expectRefused({ data: 'x', id }, {}, SseFormatError, 'id');
      expectRefused({ data: 'x', id }, { ids: 'spec' }, SseFormatError, 'id');
    }
    const messages = [
      { data: 'a', id: '1' },
      { data: 'b', id: 'x\0' },
    ];
    expect(reportsExpected(messages.map(naive).join(''), messages)).toBe(false);
  });

  it('row 19: portable ids by default; ids: "spec" allows any spec-legal id', () => {
    const notPortable = ['é', '\x01', '\t', ' a', 'a ', ' ', '\x7f', '😀', 'a\u2028', '\uFEFF', 'ü b'];
    for (const id of notPortable) {
      expectRefused({ data: 'x', id }, {}, SseFormatError, 'id');
      expectRefused({ data: 'x', id }, { ids: 'portable' }, SseFormatError, 'id');
    }
    roundTrip(
      notPortable.map((id) => ({ data: 'x', id })),
      { ids: 'spec' },
    );
    roundTrip(['a b', '!~', 'abc', '{"k":1}', 'a:b', ''].map((id) => ({ data: 'x', id })));
    for (const id of ['\uD800', 'a\uDC00'])
      expectRefused({ data: 'x', id }, { ids: 'spec' }, SseFormatError, 'id');
  });

  it('row 20: id "" is written as "id:" and resets lastEventId', () => {
    const wire = roundTrip([{ data: 'a', id: '1' }, { data: 'b', id: '' }, { data: 'c' }]);
    expect(wire).toBe('id: 1\ndata: a\n\nid:\ndata: b\n\ndata: c\n\n');
  });

  it('row 21: a message without id after messages with ids keeps the previous lastEventId', () => {
    const wire = roundTrip([{ data: 'a', id: '7' }, { data: 'b' }, { data: 'c', type: 't' }]);
    expect(wire.match(/^id:/gm)).toHaveLength(1);
  });

  it('row 22: there are no id-only blocks (every frame has a data line and dispatches)', () => {
    const wire = roundTrip([{ data: '', id: '42' }]);
    expect(wire).toBe('id: 42\ndata:\n\n');
    expect(parseWithLibrary([wire]).events).toHaveLength(1);
  });

  it('row 23: retry must be an integer from 0 to 2^31-1, else SseRangeError', () => {
    for (const retry of [
      1.5,
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      '12a',
      '5',
    ]) {
      expectRefused({ data: 'x', retry: retry as number }, {}, SseRangeError, 'retry');
      expect(() => formatRetry(retry as number)).toThrow(SseRangeError);
    }
    expect(() => formatRetry(-1)).toThrow(RangeError);
    // A number in a string (from an environment variable) is named as a string, not as the number.
    expect(() => formatRetry('3000' as unknown as number)).toThrow(/, got "3000"$/);
    expect(roundTrip([{ data: 'x', retry: 0 }])).toBe('retry: 0\ndata: x\n\n');
    roundTrip([{ data: 'x', retry: 3000 }, { data: 'y' }, { data: 'z', retry: 1 }]);
  });

  it('row 24: retry is capped at 2^31-1', () => {
    expectRefused({ data: 'x', retry: 2 ** 31 }, {}, SseRangeError, 'retry');
    expectRefused({ data: 'x', retry: Number.MAX_SAFE_INTEGER }, {}, SseRangeError, 'retry');
    expect(() => formatRetry(2 ** 31)).toThrow(SseRangeError);
    roundTrip([{ data: 'x', retry: 2 ** 31 - 1 }]);
    expect(interpret(formatRetry(2 ** 31 - 1)).retry).toBe(2 ** 31 - 1);
  });

  it('row 25: a standalone retry block ends with a blank line and fires nothing', () => {
    const wire = formatRetry(3000);
    expect(wire).toBe('retry: 3000\n\n');
    for (const parsed of parseAllWays(wire)) {
      expect(parsed.retry).toBe(3000);
      expect(parsed.events).toEqual([]);
    }
    expect(formatEvent({ data: 'x', retry: 5 }).endsWith('\n\n')).toBe(true);
  });

  it('row 26: every comment line starts with ":" (no injection)', () => {
    expect(formatComment('x\ndata: evil')).toBe(': x\n: data: evil\n');
    const messages = [{ data: 'real', id: '1' }];
    for (const text of ['x\ndata: evil\n', 'x\r\n\r\ndata: evil', 'x\rdata: evil\r', '\n\nid: 9\n\n']) {
      const wire = `${formatComment(text)}${formatEvent(messages[0]!)}${formatComment(text)}`;
      for (const parsed of parseAllWays(wire)) expect(parsed.events).toEqual(expected(messages));
    }
    expect(interpret(`: x\ndata: evil\n\n`).events).toHaveLength(1);
    const notText = thrown(() => formatComment(5 as unknown as string));
    expect(notText).toBeInstanceOf(SseFormatError);
    expect(notText).toMatchObject({ field: 'comment' });
  });

  it('row 27: comments add no blank line (a reconnected client keeps its last event id)', () => {
    expect(formatComment('keep-alive')).toBe(': keep-alive\n');
    expect(formatComment('')).toBe(':\n');
    const keepAlives = formatComment('ping') + formatComment('') + formatComment('\n');
    expect(interpret(keepAlives, '7').lastEventId).toBe('7');
    expect(interpret(': ping\n\n', '7').lastEventId).toBe('');
  });

  it('row 28: every line ends with LF, so every frame dispatches at end of stream', () => {
    const messages = [{ data: 'a\rb\r' }, { data: '\r\n', id: '1' }, { data: 'z', type: 't', retry: 9 }];
    const wire = roundTrip(messages);
    expect(wire).not.toContain('\r');
    // eventsource-parser 4 dispatches a frame ending in a lone CR at once; 3 held it back (§1.8).
    expect(interpret('data: x\r\r').events).toHaveLength(1);
    expect(parseWithLibrary(['data: x\r\r']).events).toEqual(interpret('data: x\r\r').events);
  });

  it('row 29: no BOM precedes the first frame', () => {
    const messages = [{ data: '\uFEFF' }, { data: 'x', type: '\uFEFF' }];
    const wire = roundTrip(messages);
    expect(wire.startsWith('\uFEFF')).toBe(false);
    expect(parseWithLibrary([wire]).events).toEqual(expected(messages));
    // eventsource-parser 4 strips a decoded U+FEFF (3 lost the first event to it), and one more
    // behind a TextDecoder, which strips one itself: how many a client strips is its own (§1.8).
    expect(parseWithLibrary([`\uFEFF${wire}`]).events).toEqual(expected(messages));
  });

  it('row 30: encoded bytes can be chunked anywhere, even inside a surrogate pair', () => {
    const message = { data: '😀𝄞\n\u{10FFFF}é', id: 'a', type: '😀' };
    const want = expected([message]);
    const bytes = encodeEvent(message);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const chunks = [bytes.subarray(0, cut), bytes.subarray(cut)];
      expect(parseWithLibrary(decodeChunks(chunks)).events).toEqual(want);
    }
    const wire = formatEvent(message);
    const mid = wire.indexOf('\uD83D') + 1;
    const stringChunks = [utf8.encode(wire.slice(0, mid)), utf8.encode(wire.slice(mid))];
    expect(parseWithLibrary(decodeChunks(stringChunks)).events).not.toEqual(want);
  });

  it('row 31: more data lines than maxDataLines throws SseRangeError', () => {
    const atLimit = 'x\n'.repeat(DEFAULT_MAX_DATA_LINES - 1);
    expect(DEFAULT_MAX_DATA_LINES).toBe(131_072);
    roundTrip([{ data: atLimit }], {}, { bytewise: false });
    expectRefused({ data: `${atLimit}\n` }, {}, SseRangeError, 'data');
    expectRefused({ data: `${atLimit}\r` }, {}, SseRangeError, 'data');
    roundTrip([{ data: 'a\nb' }], { maxDataLines: 2 });
    for (const data of ['a\nb\nc', '\r\n\r\n', { a: 1 }]) {
      const options = { maxDataLines: 2, serialize: (value: unknown) => JSON.stringify(value, null, 1) };
      expectRefused({ data }, options, SseRangeError, 'data');
    }
  });

  it('row 32: frames are atomic: a stream cut anywhere delivers exactly the complete frames', () => {
    const messages = [
      { data: 'a\n\nb', id: '1' },
      { data: '', type: 't' },
      { data: '\n', id: '2', retry: 5 },
    ];
    const frames = messages.map((message) => formatEvent(message));
    for (const frame of frames) expect(frame.indexOf('\n\n')).toBe(frame.length - 2);
    const wire = frames.join('');
    const ends = frames.map((_, index) => frames.slice(0, index + 1).join('').length);
    for (let length = 0; length <= wire.length; length++) {
      const complete = ends.filter((end) => end <= length).length;
      const want = expected(messages.slice(0, complete));
      expect(interpret(wire.slice(0, length)).events).toEqual(want);
      expect(parseWithLibrary([wire.slice(0, length)]).events).toEqual(want);
    }
  });
});

describe('wire-format.md §1.5 spec examples', () => {
  const examples: Array<{ name: string; stream: string; events: DispatchedEvent[] }> = [
    {
      name: 'multi-line data',
      stream: 'data: YHOO\ndata: +2\ndata: 10\n\n',
      events: [{ type: 'message', data: 'YHOO\n+2\n10', lastEventId: '' }],
    },
    {
      name: 'data without colon, and an unterminated last block',
      stream: 'data\n\ndata\ndata\n\ndata:',
      events: [
        { type: 'message', data: '', lastEventId: '' },
        { type: 'message', data: '\n', lastEventId: '' },
      ],
    },
    {
      name: 'with and without the space after the colon',
      stream: 'data:test\n\ndata: test\n\n',
      events: [
        { type: 'message', data: 'test', lastEventId: '' },
        { type: 'message', data: 'test', lastEventId: '' },
      ],
    },
    {
      name: 'comment, ids, id reset and a discarded third event',
      stream: ': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n',
      events: [
        { type: 'message', data: 'first event', lastEventId: '1' },
        { type: 'message', data: 'second event', lastEventId: '' },
      ],
    },
  ];

  for (const { name, stream, events } of examples) {
    it(`${name}: the oracle and eventsource-parser agree with the spec, and the encoder reproduces it`, () => {
      for (const parsed of parseAllWays(stream)) expect(parsed.events).toEqual(events);
      const messages = events.map((event, index) => ({
        data: event.data,
        id: event.lastEventId === (events[index - 1]?.lastEventId ?? '') ? undefined : event.lastEventId,
      }));
      expect(expected(messages)).toEqual(events);
      roundTrip(messages);
    });
  }
});
