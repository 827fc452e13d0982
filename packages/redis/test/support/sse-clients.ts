import { createParser } from 'eventsource-parser';
import { EventSource } from 'undici';

/** What a client reported for one event. */
export interface Seen {
  type: string;
  data: string;
  lastEventId: string;
}

const TYPES = ['message', 'history-truncated'];

/** An undici EventSource that records every event; it reconnects on its own, with `Last-Event-ID`. */
export class LiveClient {
  readonly seen: Seen[] = [];
  readonly source: EventSource;
  opens = 0;

  constructor(readonly url: string) {
    this.source = new EventSource(url);
    this.source.addEventListener('open', () => {
      this.opens++;
    });
    for (const type of TYPES) {
      this.source.addEventListener(type, (event) => {
        const { data, lastEventId } = event as MessageEvent<string>;
        this.seen.push({ type, data, lastEventId });
      });
    }
  }

  /** Ids of the `message` events, in arrival order. */
  get ids(): string[] {
    return this.seen.filter((e) => e.type === 'message').map((e) => e.lastEventId);
  }

  /** The truncation events. */
  get truncations(): Seen[] {
    return this.seen.filter((e) => e.type === 'history-truncated');
  }

  close(): void {
    this.source.close();
  }
}

/**
 * A fetch + eventsource-parser client: sends `Last-Event-ID` itself, exposes the response headers,
 * and stops when aborted.
 */
export async function fetchClient(url: string, lastEventId?: string) {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: lastEventId ? { 'last-event-id': lastEventId } : {},
    signal: abort.signal,
  });
  const seen: Seen[] = [];
  let last = lastEventId ?? '';
  const parser = createParser({
    onEvent(event) {
      if (event.id !== undefined) last = event.id;
      seen.push({ type: event.event ?? 'message', data: event.data, lastEventId: last });
    },
  });
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>)
      parser.feed(decoder.decode(chunk, { stream: true }));
  })().catch(() => {});
  return {
    response,
    seen,
    get ids() {
      return seen.filter((e) => e.type === 'message').map((e) => e.lastEventId);
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
}
