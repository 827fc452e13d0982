import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { SseStreamDroppedError } from '../src/index.js';

/**
 * A plain `node:http` server that answers every request with a fetch handler: the smallest bridge
 * a user might write, with backpressure (`write()` false waits for `'drain'`). It tells of a
 * disconnect only by cancelling the body, never through `request.signal` (undici's `Request` on
 * Node 20 keeps what follows a signal reachable for longer than a connection lives).
 */
export function serveFetch(handler: (request: Request) => Promise<Response>): Server {
  return createServer((req, res) => {
    handler(toRequest(req)).then(
      (response) => send(req, response, res),
      (error: unknown) => {
        console.error(error);
        res.writeHead(500).end();
      },
    );
  });
}

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers.set(name, value);
  }
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(`http://${req.headers.host}${req.url}`, {
    method: req.method,
    headers,
    ...(hasBody ? { body: req as unknown as ReadableStream, duplex: 'half' } : {}),
  } as RequestInit);
}

async function send(req: IncomingMessage, response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, headers);
  res.flushHeaders();
  if (!response.body) return void res.end();
  const reader = response.body.getReader();
  // A response queued behind pipelined ones has no socket yet: its request's socket tells.
  const socket = req.socket;
  const gone = () => {
    reader.cancel().catch(() => {});
    res.destroy();
  };
  if (socket.destroyed) gone();
  socket.on('close', gone);
  res.on('close', () => {
    socket.off('close', gone);
    if (!res.writableFinished) gone();
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return void res.end();
      if (!res.write(value)) await drainedOrClosed(res);
    }
  } catch (error) {
    // A stream the handler dropped on purpose is no failure of the bridge's.
    if (!(error instanceof SseStreamDroppedError)) console.error(error);
    res.destroy();
  }
}

/** Waits for room or the end, removing both listeners either way: a long stream waits many times. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}
