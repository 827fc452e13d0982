/**
 * One server-sent event, in the shape NestJS made popular.
 *
 * @example
 * ```ts
 * const message: MessageEvent = { data: { hello: 'world' }, id: '42', type: 'greeting' };
 * ```
 */
export interface MessageEvent<T = string | object> {
  /** A string is sent as is (line by line); anything else goes through `serialize` (JSON by default). */
  data: T;
  /** The event id clients echo as `Last-Event-ID` when they reconnect. `""` resets it. */
  id?: string | undefined;
  /** The event type a client listens for with `addEventListener(type)`; absent or `""` means `message`. */
  type?: string | undefined;
  /** Reconnection time in milliseconds the client should use from now on. */
  retry?: number | undefined;
}

/**
 * A map from event type to data type, for routes that declare what they send: a type, or an
 * interface (what `TypedMessageEvent` takes is any object type).
 *
 * @example
 * ```ts
 * type Events = { tick: { n: number }; message: string };
 * const source: Observable<TypedMessageEvent<Events>> = ...;
 * ```
 */
export type EventMap = Record<string, unknown>;

/**
 * The union of messages a route with event map `M` may send: `type` must be a key of `M` and
 * `data` that key's type. The key `message` may also be sent with no `type`.
 */
export type TypedMessageEvent<M extends object> = {
  [K in keyof M & string]: K extends 'message'
    ? { data: M[K]; type?: K | '' | undefined; id?: string | undefined; retry?: number | undefined }
    : { data: M[K]; type: K; id?: string | undefined; retry?: number | undefined };
}[keyof M & string];

/** How the encoder turns messages into wire text. Every option is optional. */
export interface FormatOptions {
  /**
   * Turns non-string `data` into a string. It must return a string; anything else
   * (`JSON.stringify(undefined)` is `undefined`) throws {@link SseFormatError}.
   * rxsse's own events (a channel's truncation event) are always JSON: clients read them as such.
   * @defaultValue `JSON.stringify`
   */
  serialize?: ((data: unknown) => string) | undefined;
  /**
   * Throw instead of normalizing: CR and CRLF in data (clients would see LF), and lone surrogates
   * in data (clients would see U+FFFD). Comments are always normalized: clients never see them.
   * @defaultValue false
   */
  strict?: boolean | undefined;
  /**
   * Which ids are accepted. `'portable'` allows printable ASCII without leading or trailing spaces,
   * the ids every Node and browser client round-trips through `Last-Event-ID`. `'spec'` allows any
   * id the spec allows (no CR, LF, NUL or lone surrogate).
   * @defaultValue 'portable'
   */
  ids?: 'portable' | 'spec' | undefined;
  /**
   * Allow `type: 'error'` and `type: 'open'`, which browsers deliver to `onerror` / `onopen`.
   * @defaultValue false
   */
  allowReservedTypes?: boolean | undefined;
  /**
   * Most data lines one event may have (undici fails the connection for good above 131,072).
   * @defaultValue 131072
   */
  maxDataLines?: number | undefined;
}
