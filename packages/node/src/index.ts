export { AppServers } from './app-servers.js';
export { guardClientErrors } from './client-error.js';
export { trackConnections } from './connections.js';
export { NodeSink } from './node-sink.js';
export {
  answerHead,
  consoleReporter,
  type EventContext,
  type EventHandler,
  markServerClosing,
  openEventStream,
  readLastEventId,
} from './open-event-stream.js';
export { type NodeRequest, type NodeResponse, responseDone, watchResponseClose } from './response-close.js';
export { closeServerStreams, closeStreamsOnServerClose, trackHttp2Sessions } from './shutdown.js';
