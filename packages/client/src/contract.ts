import { SseEventError } from './errors.js';
import { show } from './options.js';

/**
 * A map from event type to data type, as `@rxsse/core`'s `TypedMessageEvent` takes: a type, or an
 * interface (what the contract types take is any object type).
 */
export type EventMap = Record<string, unknown>;

/** How one event type's data travels: as JSON text, or as the string itself. */
export interface DataFormat<T> {
  readonly format: 'json' | 'text';
  /** Type-only: carries `T`, never set. */
  readonly sample?: T;
}

/** Data sent as the string itself (line breaks arrive as LF). */
export const text: DataFormat<string> = { format: 'text' };

const JSON_FORMAT: DataFormat<unknown> = { format: 'json' };

/** Data sent as JSON text: any JSON value, strings included. */
export function json<T>(): DataFormat<T> {
  return JSON_FORMAT as DataFormat<T>;
}

/**
 * A message a route with event map `M` sends, before encoding: the shape of `@rxsse/core`'s
 * `TypedMessageEvent<M>`. The type `message` may go without `type`.
 */
export type ContractMessage<M extends object> = {
  [K in keyof M & string]: K extends 'message'
    ? { type?: K | '' | undefined; data: M[K]; id?: string | undefined; retry?: number | undefined }
    : { type: K; data: M[K]; id?: string | undefined; retry?: number | undefined };
}[keyof M & string];

/** A message whose data is already the text the contract puts on the wire. */
export interface EncodedMessage {
  type?: string | undefined;
  data: string;
  id?: string | undefined;
  retry?: number | undefined;
}

/** What server routes and clients agree on: every event type, and whether its data is JSON or text. */
export interface EventContract<M extends object> {
  /** Each type's format. */
  readonly formats: { readonly [K in keyof M]: 'json' | 'text' };
  /**
   * Server side: `message` with its data as wire text (JSON types through `JSON.stringify`, even a
   * string). Use it as `source$.pipe(map(events.encode))` or before `channel.publish`.
   * @throws {SseEventError} for a message that is not an object, a type the contract does not declare,
   *   text data that is not a string, or data `JSON.stringify` cannot write.
   */
  readonly encode: (message: ContractMessage<M>) => EncodedMessage;
  /**
   * Client side: the data of an event of `type` as the contract declares it.
   * @throws {SseEventError} for an undeclared type or data that is not JSON.
   */
  readonly decode: (type: string, data: string) => M[keyof M];
}

/** The event map of a contract: `EventsOf<typeof events>`. */
export type EventsOf<C> = C extends EventContract<infer M> ? M : never;

/**
 * Declares the events a route sends, for the route and its clients to share.
 * @throws {TypeError} naming a type whose format is not `json()` or `text`.
 *
 * @example
 * ```ts
 * export const events = defineEvents({ tick: json<{ n: number }>(), message: text });
 * app.get('/sse', sse(() => ticks$.pipe(map(events.encode))));  // server
 * fromEventSource('/sse', { events }).subscribe((e) => e.type === 'tick' && e.data.n); // client
 * ```
 */
export function defineEvents<S extends Record<string, DataFormat<unknown>>>(
  spec: S,
): EventContract<DataOf<S>> {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw new TypeError(`defineEvents takes an object of event types, got ${show(spec)}`);
  const formats = Object.fromEntries(
    Object.entries(spec).map(([type, value]) => {
      // `json` without its call would declare nothing, and every event of the type fail as undeclared.
      const format = (value as DataFormat<unknown> | null)?.format;
      if (format !== 'json' && format !== 'text')
        throw new TypeError(`Event "${type}" must be json() or text, got ${show(value)}`);
      return [type, format];
    }),
  );
  const formatOf = (type: string) => {
    const format = Object.hasOwn(formats, type) ? formats[type] : undefined;
    if (format === undefined) throw new SseEventError(type, 'is not declared by the contract');
    return format;
  };
  const contract = {
    formats,
    encode(message: { type?: string; data: unknown }): EncodedMessage {
      if (typeof message !== 'object' || message === null)
        throw new SseEventError(undefined, `is not a message, got ${show(message)}`);
      const type = message.type || 'message';
      const wire = formatOf(type) === 'text' ? message.data : stringify(type, message.data);
      if (typeof wire !== 'string')
        throw new SseEventError(type, `cannot send ${typeof message.data} as its data`);
      return { ...message, data: wire };
    },
    decode(type: string, data: string): unknown {
      if (formatOf(type) === 'text') return data;
      try {
        return JSON.parse(data);
      } catch (cause) {
        throw new SseEventError(type, 'has data that is not JSON', { cause });
      }
    },
  };
  return contract as unknown as EventContract<DataOf<S>>;
}

/** `JSON.stringify`, whose own errors (a BigInt, a cycle, a throwing `toJSON`) become `SseEventError`. */
function stringify(type: string, data: unknown): string | undefined {
  try {
    return JSON.stringify(data);
  } catch (cause) {
    throw new SseEventError(type, 'has data JSON.stringify cannot write', { cause });
  }
}

/** The event map a `defineEvents` spec declares. */
type DataOf<S> = { [K in keyof S]: S[K] extends DataFormat<infer T> ? T : never };
