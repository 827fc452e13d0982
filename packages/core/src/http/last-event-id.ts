/** The query parameter polyfills use when they cannot set the `Last-Event-ID` header. */
export const LAST_EVENT_ID_PARAM = 'lastEventId';

/**
 * The id a reconnecting client last saw: the `Last-Event-ID` header, or else the `lastEventId`
 * query parameter of the request URL. `undefined` on a first connection.
 */
export function pickLastEventId(header: string | undefined, url: string | undefined): string | undefined {
  if (header) return header;
  const query = url?.indexOf('?') ?? -1;
  if (query < 0) return undefined;
  return new URLSearchParams(url!.slice(query + 1)).get(LAST_EVENT_ID_PARAM) || undefined;
}
