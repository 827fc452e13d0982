/**
 * The answer to HEAD: the headers of a GET, and a body that ends as soon as anything reads it. A
 * `null` body is one of 0 bytes, and Bun and Deno say so (`Content-Length: 0`), which RFC 9110
 * forbids where the GET's content has another length; an open one they cancel unread.
 */
export function headResponse(headers: Readonly<Record<string, string>>): Response {
  const body = new ReadableStream<Uint8Array>({
    // The stream pulls by itself once when it starts: only a reader's pull comes from a locked one.
    pull: (controller) => {
      if (body.locked) controller.close();
    },
  });
  return new Response(body, { status: 200, headers });
}
