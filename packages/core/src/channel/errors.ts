import { parseStreamId, type StreamId } from './stream-id.js';

/**
 * What a channel's source fails with when its engine could not be reached to subscribe (Redis
 * down). The response has started with status 200 by then, so the stream ends and EventSource
 * clients reconnect after their retry delay, with the same `Last-Event-ID`; the stream reports
 * this error to `onError`.
 */
export class ChannelUnavailableError extends Error {
  override readonly name = 'ChannelUnavailableError';
  constructor(
    /** The channel's topic. */
    readonly topic: string,
    /** The engine's error. */
    cause: unknown,
  ) {
    super(`Channel "${topic}" is unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/**
 * What `publish` rejects with for a message with a field beyond `data`, `id`, `type` and `retry`
 * (`{ data, userId }`): a channel stores and delivers those four alone, on every engine, as the wire
 * carries them alone. Kept by one engine and not by another, a field a `filter` reads would work in
 * development and fail in production. Put it in `data` (`{ data: { userId, text } }`).
 */
export class UnknownFieldError extends TypeError {
  override readonly name = 'UnknownFieldError';
  constructor(
    /** The channel's topic. */
    readonly topic: string,
    /** The field, the first of them if there are several. */
    readonly field: string,
  ) {
    super(
      `Channel "${topic}" cannot publish the field ${JSON.stringify(field)}: a message holds data, id, type and retry alone, on every engine (put it in data)`,
    );
  }
}

/**
 * An engine broke the engine contract (e.g. handed out an id that is not a `<ms>-<seq>` stream id):
 * a bug in the engine, reported instead of sending a client duplicates or events out of order.
 */
export class EngineContractError extends TypeError {
  override readonly name = 'EngineContractError';
}

/** Checks the id rule of the engine contract. @throws {EngineContractError} */
export function checkEngineId(id: unknown, topic: string): StreamId {
  const parsed = typeof id === 'string' ? parseStreamId(id) : undefined;
  if (parsed === undefined) {
    throw new EngineContractError(
      `The channel engine gave topic "${topic}" the id ${JSON.stringify(id)}: ids must be <ms>-<seq> stream ids`,
    );
  }
  return parsed;
}
