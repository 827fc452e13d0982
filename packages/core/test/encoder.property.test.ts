/**
 * Property tests over hostile messages: every accepted message round-trips through the oracle and
 * eventsource-parser (whole, byte by byte, random chunks), every refused one throws the documented
 * error, and every frame has the documented wire shape.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatOptions,
  hostileString,
  type Message,
  message,
  violations,
} from '../../../test/wire/arbitraries.js';
import { expected, expectedRetry, interpret } from '../../../test/wire/oracle.js';
import { byteByByte, decodeChunks, parseWithLibrary, splitBytes } from '../../../test/wire/parsers.js';
import { encodeEvent, formatComment, formatEvent, formatRetry } from '../src/encode/format.js';
import type { FormatOptions } from '../src/encode/types.js';

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const FRAME =
  /^(?:event: [^\n]+\n)?(?:id:(?: [^\n]+)?\n)?(?:retry: (?:0|[1-9][0-9]*)\n)?(?:data:(?: [^\n]+)?\n)+\n$/;
const LINE_START = /^(?:data:|event: |id:|retry: |:)/;

let generatedMessages = 0;

/** Encodes `candidate`, or checks it is refused with one of the errors the policy gives it. */
function encodeOrRefuse(candidate: Message, options: FormatOptions): Uint8Array | undefined {
  generatedMessages++;
  const reasons = violations(candidate, options);
  if (reasons.length === 0) return encodeEvent(candidate, options);
  let error: unknown;
  try {
    formatEvent(candidate, options);
  } catch (caught) {
    error = caught;
  }
  expect(
    reasons.some(({ errorClass, field }) => error instanceof errorClass && error.field === field),
    `${String(error)} should be one of ${reasons.map(({ errorClass, field }) => `${errorClass.name}(${field})`)}`,
  ).toBe(true);
  return undefined;
}

function rawText(candidate: Message, options: FormatOptions): string {
  return typeof candidate.data === 'string'
    ? candidate.data
    : (options.serialize ?? JSON.stringify)(candidate.data);
}

const item = fc.oneof(
  { weight: 5, arbitrary: message.map((value) => ({ message: value })) },
  { weight: 1, arbitrary: hostileString(20).map((comment) => ({ comment })) },
);

describe('encoder properties', () => {
  it('streams of accepted messages round-trip through the oracle and eventsource-parser', () => {
    fc.assert(
      fc.property(
        fc.array(item, { minLength: 1, maxLength: 10 }),
        formatOptions,
        fc.array(fc.nat(), { maxLength: 12 }),
        (items, options, cuts) => {
          const accepted: Message[] = [];
          const chunks: Uint8Array[] = [];
          for (const entry of items) {
            if ('comment' in entry) {
              chunks.push(utf8.encode(formatComment(entry.comment)));
              continue;
            }
            const bytes = encodeOrRefuse(entry.message, options);
            if (bytes) {
              accepted.push(entry.message);
              chunks.push(bytes);
            }
          }
          const wire = chunks.map((chunk) => strictUtf8.decode(chunk)).join('');
          const bytes = utf8.encode(wire);
          const want = expected(accepted, options);
          const retry = expectedRetry(accepted);
          if (options.strict) {
            expect(want.map((event) => event.data)).toEqual(accepted.map((m) => rawText(m, options)));
          }
          for (const parsed of [
            interpret(wire),
            interpret(bytes),
            parseWithLibrary([wire]),
            parseWithLibrary(decodeChunks([bytes])),
            parseWithLibrary(decodeChunks(byteByByte(bytes))),
            parseWithLibrary(decodeChunks(splitBytes(bytes, cuts))),
          ]) {
            expect(parsed.events).toEqual(want);
            expect(parsed.retry).toBe(retry);
          }
        },
      ),
      { numRuns: 2500 },
    );
  });

  it('refused messages throw SseFormatError or SseRangeError naming the field', () => {
    fc.assert(
      fc.property(message, formatOptions, (candidate, options) => {
        encodeOrRefuse(candidate, options);
      }),
      { numRuns: 3000 },
    );
  });

  it('frames, comments and retry blocks have the documented wire shape', () => {
    fc.assert(
      fc.property(message, formatOptions, hostileString(30), (candidate, options, comment) => {
        const bytes = encodeOrRefuse(candidate, options);
        if (bytes) {
          const frame = formatEvent(candidate, options);
          expect(frame).toMatch(FRAME);
          expect(frame).not.toContain('\r');
          expect(frame.indexOf('\n\n')).toBe(frame.length - 2);
          expect(bytes).toEqual(utf8.encode(frame));
          expect(strictUtf8.decode(bytes)).toBe(frame);
          for (const line of frame.slice(0, -2).split('\n')) expect(line).toMatch(LINE_START);
        }
        const text = formatComment(comment);
        expect(text.endsWith('\n')).toBe(true);
        expect(text).not.toMatch(/\r|\n\n/);
        expect(text.isWellFormed()).toBe(true);
        for (const line of text.slice(0, -1).split('\n')) expect(line).toMatch(/^:/);
        expect(interpret(text + text, 'kept')).toEqual({ events: [], retry: undefined, lastEventId: 'kept' });
      }),
      { numRuns: 3000 },
    );
  });

  it('formatRetry writes one dispatching retry block for every valid value', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (ms) => {
        const block = formatRetry(ms);
        expect(block).toBe(`retry: ${ms}\n\n`);
        expect(parseWithLibrary([block]).retry).toBe(ms);
        expect(interpret(block).retry).toBe(ms);
      }),
      { numRuns: 500 },
    );
  });

  it('generated at least 10,000 messages in this run', () => {
    expect(generatedMessages).toBeGreaterThanOrEqual(10_000);
  });
});
