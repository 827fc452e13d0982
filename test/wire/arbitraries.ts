/**
 * fast-check arbitraries for hostile messages, and the policy of docs/wire-format.md §2 restated
 * independently of the encoder: which (error class, field) pairs a message deserves.
 */

import type { FormatOptions, MessageEvent } from '@rxsse/core';
import { type SseField, SseFormatError, SseRangeError } from '@rxsse/core';
import fc from 'fast-check';

export type Message = MessageEvent<unknown>;

const framing = ['\r', '\n', '\r\n', '\n\n', '\0', ':', ' ', '  ', '\t'];
const lookalikes = ['\uFEFF', '\u2028', '\u2029', '\u0085', '\v', '\f'];
const fragments = ['data:', 'data: ', 'id:', 'id: ', 'event:', 'event: ', 'retry:', 'retry: 1', ': '];
const loneSurrogates = ['\uD800', '\uD83D', '\uDBFF', '\uDC00', '\uDE00', '\uDFFF'];
const astral = ['😀', '𝄞', '\u{10FFFF}', '\u{1F4A9}'];

/** One unit of a hostile string: mostly framing characters and look-alikes. */
export const hostileUnit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...framing) },
  { weight: 2, arbitrary: fc.constantFrom(...lookalikes) },
  { weight: 2, arbitrary: fc.constantFrom(...fragments) },
  { weight: 2, arbitrary: fc.constantFrom(...loneSurrogates) },
  { weight: 2, arbitrary: fc.constantFrom(...astral) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
);

export const hostileString = (maxLength: number) => fc.string({ unit: hostileUnit, maxLength });

/** Hostile, but legal in `type` and in `ids: 'spec'` ids: no CR, LF, NUL or lone surrogate. */
const legalString = (maxLength: number) =>
  fc.string({
    unit: hostileUnit.filter((unit) => !/[\r\n\0]/.test(unit) && unit.isWellFormed()),
    maxLength,
  });

/** Printable ASCII, sometimes with leading or trailing spaces (which portable mode refuses). */
const asciiId = fc.string({
  unit: fc
    .oneof(fc.constantFrom(' ', ':', '"', '\\'), fc.integer({ min: 0x20, max: 0x7e }))
    .map((unit) => (typeof unit === 'number' ? String.fromCharCode(unit) : unit)),
  maxLength: 12,
});

const type = fc.option(
  fc.oneof(
    { weight: 6, arbitrary: legalString(8) },
    { weight: 1, arbitrary: hostileString(8) },
    { weight: 2, arbitrary: fc.constantFrom('', 'message', 'error', 'open', 'tick', ' tick ') },
    { weight: 1, arbitrary: fc.constantFrom(7, null) as fc.Arbitrary<unknown> as fc.Arbitrary<string> },
  ),
  { nil: undefined, freq: 3 },
);

const id = fc.option(
  fc.oneof(
    { weight: 4, arbitrary: asciiId },
    { weight: 2, arbitrary: legalString(8) },
    { weight: 1, arbitrary: hostileString(8) },
    { weight: 1, arbitrary: fc.constantFrom('', 1 as unknown as string) },
  ),
  { nil: undefined, freq: 3 },
);

const retry = fc.option(
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 2 ** 31 - 1 }) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.constantFrom(-1, 0.5, 2 ** 31, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER),
        fc.double(),
      ),
    },
  ),
  { nil: undefined, freq: 4 },
);

const data: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 8, arbitrary: hostileString(40) },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: hostileUnit }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, () => 1, Symbol('s'), 1n) as fc.Arbitrary<unknown> },
);

export const message: fc.Arbitrary<Message> = fc
  .record({ data, type, id, retry }, { requiredKeys: ['data'] })
  .map((record) => record as Message);

/** Serializers a caller might pass; the last ones emit CR or fail. */
const serializers: Record<string, ((value: unknown) => string) | undefined> = {
  default: undefined,
  pretty: (value) => JSON.stringify(value, null, 2),
  crIndent: (value) => JSON.stringify(value, null, '\r'),
  string: (value) => String(value),
};

export const formatOptions: fc.Arbitrary<FormatOptions> = fc.record(
  {
    strict: fc.oneof(
      { weight: 2, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    ids: fc.constantFrom('portable' as const, 'spec' as const),
    allowReservedTypes: fc.boolean(),
    maxDataLines: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined, freq: 2 }),
    serialize: fc.constantFrom(...Object.values(serializers)),
  },
  { requiredKeys: [] },
);

export type Violation = { errorClass: typeof SseFormatError | typeof SseRangeError; field: SseField };

const PRINTABLE = /^[\x20-\x7e]*$/;

/** The policy of docs/wire-format.md §2, restated: every reason `message` must be refused. */
export function violations(message: Message, options: FormatOptions): Violation[] {
  const found: Violation[] = [];
  const format = (field: SseField) => found.push({ errorClass: SseFormatError, field });
  const range = (field: SseField) => found.push({ errorClass: SseRangeError, field });
  const breaksFraming = (text: string) => text.includes('\r') || text.includes('\n') || text.includes('\0');

  const { type, id } = message;
  if (type !== undefined && type !== '') {
    if (typeof type !== 'string' || breaksFraming(type) || !type.isWellFormed()) format('type');
    else if ((type === 'error' || type === 'open') && !options.allowReservedTypes) format('type');
  }
  if (id !== undefined) {
    if (typeof id !== 'string' || breaksFraming(id)) format('id');
    else if (options.ids === 'spec' ? !id.isWellFormed() : !isPortable(id)) format('id');
  }
  const { retry } = message;
  if (retry !== undefined && !(Number.isInteger(retry) && retry >= 0 && retry <= 2 ** 31 - 1)) range('retry');

  let text: unknown;
  try {
    text =
      typeof message.data === 'string' ? message.data : (options.serialize ?? JSON.stringify)(message.data);
  } catch {
    text = undefined;
  }
  if (typeof text !== 'string') {
    format('data');
  } else if (options.strict && (!text.isWellFormed() || text.includes('\r'))) {
    format('data');
  } else if (text.split(/\r\n|\r|\n/).length > (options.maxDataLines ?? 131_072)) {
    range('data');
  }
  return found;
}

function isPortable(id: string): boolean {
  return PRINTABLE.test(id) && !id.startsWith(' ') && !id.endsWith(' ');
}
