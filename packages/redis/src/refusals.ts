/**
 * Commands Redis refuses this engine for good (an ACL), each told to `onError` once: the engine
 * falls back, and every topic and read that meets the refusal again would repeat what the first
 * said. One per engine, shared by its live readers (one per partition on a Cluster).
 */
export class Refusals {
  readonly #told = new Set<string>();

  constructor(private readonly onError: (error: unknown) => void) {}

  /**
   * Tells `onError`, unless it was told already, that Redis refused `command` (its reply `refusal`,
   * the cause), so the engine does `instead`.
   */
  refused(command: string, refusal: unknown, instead: string): void {
    if (this.#told.has(command)) return;
    this.#told.add(command);
    const reply = refusal instanceof Error ? refusal.message : String(refusal);
    this.onError(new Error(`Redis refused ${command}, so ${instead}: ${reply}`, { cause: refusal }));
  }

  /**
   * Tells `onError` once that Redis refused `EVAL` (`refusal`), met where a script names an entry
   * too large to arrive in time. Elsewhere the scripts' fallbacks read the same, at the cost of
   * bytes.
   */
  refusedEval(refusal: unknown): void {
    this.refused(
      'EVAL',
      refusal,
      'an entry too large to arrive in time is not skipped, and live reads and replays over it fail until it arrives',
    );
  }
}
