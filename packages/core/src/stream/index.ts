// One connection from source to Sink, and the groups and wheels that all connections share.
export { MAX_DURATION } from './duration.js';
export { answerHeadEventStream, EventStream, streamEvents, turnAwayEventStream } from './event-stream.js';
export {
  allClosed,
  allStreams,
  checkShutdownOptions,
  checkStreamGroup,
  closeEach,
  type GroupMember,
  openStreams,
  processWide,
  type ShutdownOptions,
  type StreamGauges,
  StreamGroup,
  serverStreams,
  shutdownDeadline,
} from './group.js';
export { type HeartbeatTarget, heartbeatCount, scheduleHeartbeat } from './heartbeat.js';
export type { StreamMetrics } from './metrics.js';
export {
  type InvalidMessagePolicy,
  overStreamOptions,
  type ResolvedStreamOptions,
  resolveStreamOptions,
  STREAM_OPTION_NAMES,
  type StreamOptions,
} from './options.js';
export type { OverflowPolicy } from './overflow.js';
export { type AbortableSink, CUT_SHORT, HandlerSetup, type LetGo, letGoSource } from './pending-setup.js';
export { type ErrorReporter, reportTo } from './report.js';
export { endIterator, madeIterator, PULLS_PER_TURN, releaseHeld, releaseSource } from './source-feed.js';
export type { CloseReason, StreamStats } from './stats.js';
