// @rxsse/core: what routes and transports use. Channels are in `@rxsse/core/channel`, test
// helpers for transport and engine authors in `@rxsse/core/testing`.
export * from './encode/index.js';
export * from './http/index.js';
export * from './stream/index.js';
