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
