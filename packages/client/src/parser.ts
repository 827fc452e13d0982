import { SseEventError } from './errors.js';

/** One dispatched event, as a browser's `EventSource` reports it. */
export interface ParsedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/** A streaming event-stream parser: feed it decoded text in chunks of any size. */
export interface EventStreamParser {
  feed(chunk: string): void;
  /**
   * The last event ID string: set at every dispatch, including blocks with an id and no data, once
   * `onEvent` has returned. `undefined` while neither the caller nor the stream has set one.
   */
  readonly lastEventId: string | undefined;
}

/**
 * The WHATWG "interpret an event stream" algorithm over decoded text (the caller's `TextDecoder`
 * strips the BOM). One deviation, shared with Chromium, undici and `eventsource`: the id buffer starts
 * at the id the client already has rather than `""`, so a reconnected stream whose first block has no
 * id keeps the resume point.
 *
 * @param maxLength - the most characters an event may hold (its type, its id, its data and the line being
 *   read, a comment's aside); `feed` throws `SseEventError` past it.
 */
export function createParser(
  onEvent: (event: ParsedEvent) => void,
  onRetry: (ms: number) => void,
  lastEventId?: string,
  maxLength = Number.POSITIVE_INFINITY,
): EventStreamParser {
  let rest = '';
  // The first six characters of `rest`, which tell an id, data or event line: `rest` itself is built of
  // chunks with `+=`, and V8 copies such a string whole once it is read, a copy per chunk of a long line.
  let restHead = '';
  let afterCR = false;
  let data = '';
  let type = '';
  let idBuffer = lastEventId;
  // Checked at every line end as well as at the end of a chunk: an event that ends in the chunk it
  // began in is held whole too, and a larger one must not pass for having arrived at once. Its type
  // and its id are held as long as its data, and delivered with it: a long one counts as much. The id
  // counts for every event that carries it, an earlier block's too, as each is handed it, from the
  // event's first data or event line: a block of no event (a `retry:`, an id alone) counts none, and a
  // resume id longer than the limit ends no stream that sends no event. An id line counts in place of
  // the id it replaces, an event line in place of the type it replaces. A line cut before its field is
  // known counts the least it may be: the check at its end, which counts no less, tells.
  // A comment is no event's, whatever its length (a heartbeat, a proxy's padding): never counted.
  // `field` is the line's field name; at the end of a chunk, as much of it as `restHead` holds.
  const hold = (text: string, field: string) => {
    const id =
      field === 'data' || field === 'event' || ((data || type) && field !== 'id')
        ? (idBuffer?.length ?? 0)
        : 0;
    if (text.length + data.length + (field === 'event' ? 0 : type.length) + id > maxLength)
      throw new SseEventError(undefined, `is longer than maxEventLength (${maxLength})`);
  };

  const line = (text: string) => {
    if (text === '') {
      const event =
        data === ''
          ? undefined
          : { type: type || 'message', data: data.slice(0, -1), lastEventId: idBuffer ?? '' };
      data = type = '';
      if (event) onEvent(event);
      // Only once delivered: an event `onEvent` refuses (throws on) leaves the resume point before it.
      lastEventId = idBuffer;
      return;
    }
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    // A comment's field is '', no field's.
    if (colon) hold(text, field);
    const value = colon < 0 ? '' : text.slice(colon + (text[colon + 1] === ' ' ? 2 : 1));
    if (field === 'data') data += `${value}\n`;
    else if (field === 'event') type = value;
    else if (field === 'id') {
      if (!value.includes('\0')) idBuffer = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
  };

  return {
    feed(chunk) {
      let start = 0;
      // A CR that ended the previous chunk was a line end; an LF opening this one belongs to it.
      if (afterCR && chunk.charCodeAt(0) === 10) start = 1;
      if (chunk !== '') afterCR = false;
      let cr = chunk.indexOf('\r', start);
      let lf = chunk.indexOf('\n', start);
      while (cr >= 0 || lf >= 0) {
        const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
        const text = rest + chunk.slice(start, end);
        rest = restHead = '';
        start = end + 1;
        if (end === cr) {
          if (start === chunk.length) afterCR = true;
          else if (lf === start) start++;
          cr = chunk.indexOf('\r', start);
        }
        if (lf >= 0 && lf < start) lf = chunk.indexOf('\n', start);
        line(text);
      }
      const piece = chunk.slice(start);
      restHead = (restHead + piece.slice(0, 6)).slice(0, 6);
      // Of a comment only its colon is kept, to tell the rest of its line.
      if (restHead[0] === ':') rest = ':';
      else {
        rest += piece;
        // Under six characters a line may not have told its field yet (`even` may become `event`, which
        // counts no type; `event` may become `events`, which counts no resume id): its end tells.
        if (restHead[5]) hold(rest, restHead.split(':')[0]!);
      }
    },
    get lastEventId() {
      return lastEventId;
    },
  };
}
