/**
 * A literal transcription of the WHATWG "interpret an event stream" algorithm (HTML, Server-sent
 * events: parsing an event stream, interpreting an event stream, dispatching the event), and the
 * round-trip expectation for messages the encoder accepts. Expected values in the encoder tests are
 * computed here, never written by hand.
 */
import type { FormatOptions, MessageEvent } from '@rxsse/core';

/** What a client reports for one dispatched `MessageEvent`. */
export interface DispatchedEvent {
  type: string;
  data: string;
  lastEventId: string;
}

export interface Interpretation {
  /** Events in dispatch order. */
  events: DispatchedEvent[];
  /** The reconnection time after the stream, or `undefined` if no valid `retry` field was seen. */
  retry: number | undefined;
  /** The event source's last event ID string after the stream. */
  lastEventId: string;
}

/**
 * Interprets one complete response body.
 *
 * @param stream The body as bytes (decoded with UTF-8 decode, which strips one leading BOM), or as
 *   the text the server wrote: one leading U+FEFF is then stripped, as UTF-8 decode would, so for
 *   well-formed text `interpret(text)` equals `interpret(new TextEncoder().encode(text))`.
 * @param lastEventId The event source's last event ID string before this stream (e.g. after a
 *   reconnect). The stream's own last event ID *buffer* starts empty, as the spec says.
 */
export function interpret(stream: string | Uint8Array, lastEventId = ''): Interpretation {
  let text: string;
  if (typeof stream === 'string') {
    text = stream.startsWith('\uFEFF') ? stream.slice(1) : stream;
  } else {
    text = new TextDecoder('utf-8').decode(stream);
  }

  const result: Interpretation = { events: [], retry: undefined, lastEventId };
  let dataBuffer = '';
  let eventTypeBuffer = '';
  let lastEventIdBuffer = '';

  const dispatch = () => {
    // 1. The last event ID string is set even when no event fires.
    result.lastEventId = lastEventIdBuffer;
    // 2. An empty data buffer fires nothing.
    if (dataBuffer === '') {
      eventTypeBuffer = '';
      return;
    }
    // 3. One trailing LF is removed.
    if (dataBuffer.endsWith('\n')) dataBuffer = dataBuffer.slice(0, -1);
    // 4-5. type "message" unless the event type buffer is set.
    result.events.push({
      type: eventTypeBuffer === '' ? 'message' : eventTypeBuffer,
      data: dataBuffer,
      lastEventId: result.lastEventId,
    });
    // 6. The data and event type buffers are reset, the id buffer is not.
    dataBuffer = '';
    eventTypeBuffer = '';
  };

  const processField = (field: string, value: string) => {
    switch (field) {
      case 'event':
        eventTypeBuffer = value;
        break;
      case 'data':
        dataBuffer += `${value}\n`;
        break;
      case 'id':
        // A value containing U+0000 NULL is ignored as a whole (the previous id survives).
        if (!value.includes('\0')) lastEventIdBuffer = value;
        break;
      case 'retry':
        // Only ASCII digits count; applied immediately, not at dispatch.
        if (/^[0-9]+$/.test(value)) result.retry = Number.parseInt(value, 10);
        break;
      default:
      // Any other field is ignored.
    }
  };

  let position = 0;
  while (position < text.length) {
    // A line ends at CRLF, at a lone LF or at a lone CR (a CR at the very end is a lone CR).
    let end = position;
    while (end < text.length && text[end] !== '\r' && text[end] !== '\n') end++;
    // End of file inside a line: the pending line (and any incomplete event) is discarded.
    if (end === text.length) break;
    const line = text.slice(position, end);
    position = text[end] === '\r' && text[end + 1] === '\n' ? end + 2 : end + 1;

    if (line === '') {
      dispatch();
    } else if (line.startsWith(':')) {
      // A comment.
    } else {
      const colon = line.indexOf(':');
      if (colon === -1) {
        processField(line, '');
      } else {
        const value = line.slice(colon + 1);
        processField(line.slice(0, colon), value.startsWith(' ') ? value.slice(1) : value);
      }
    }
  }
  // Once the end of the file is reached, any pending data is discarded.
  return result;
}

/**
 * What every conforming client must report for messages the encoder accepted, written in order on
 * one stream (docs/wire-format.md §2.1, round-trip oracle).
 */
export function expected(
  messages: readonly MessageEvent<unknown>[],
  options: Pick<FormatOptions, 'serialize'> = {},
  lastEventId = '',
): DispatchedEvent[] {
  return messages.map((message) => {
    const text =
      typeof message.data === 'string' ? message.data : (options.serialize ?? JSON.stringify)(message.data);
    lastEventId = message.id ?? lastEventId;
    return {
      type: message.type || 'message',
      data: (text as string).toWellFormed().replace(/\r\n?/g, '\n'),
      lastEventId,
    };
  });
}

/** The reconnection time the messages set, or `undefined` if none sets one. */
export function expectedRetry(messages: readonly MessageEvent<unknown>[]): number | undefined {
  let retry: number | undefined;
  // `+ 0` turns -0 (an accepted integer) into 0: the wire carries digits, which have no sign.
  for (const message of messages) retry = message.retry === undefined ? retry : message.retry + 0;
  return retry;
}
