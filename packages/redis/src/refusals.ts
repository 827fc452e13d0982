import { ErrorReply } from 'redis';

/**
 * Commands Redis refuses this engine for good (an ACL, a Redis that lacks them), each told to
 * `onError` once: the engine falls back, and every topic and read that meets the refusal again
 * would repeat what the first said. One per engine, shared by its live readers (one per partition
 * on a Cluster).
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
   * Tells `onError` once that Redis refused `EVAL_RO` (`refusal`: an ACL, or Redis older than 7):
   * the scripts that only read run as `EVAL`, which Redis holds back while writes are paused.
   */
  refusedReadOnly(refusal: unknown): void {
    this.refused(
      'EVAL_RO',
      refusal,
      "the scripts that only read run as EVAL, which Redis holds back while writes are paused (a failover): replays, topics' starts and live reads that run them wait for the pause to end, or time out",
    );
  }

  /**
   * Tells `onError` once that Redis refused `EVAL` (`refusal`): the engine reads without its
   * scripts, which check or size an entry without fetching it.
   */
  refusedEval(refusal: unknown): void {
    this.refused(
      'EVAL',
      refusal,
      "reads fetch whole the entries the scripts only check or size (a live cursor's large entry at every read), and an entry too large to arrive in time is not skipped: live reads, replays and topics' starts over it fail until it arrives",
    );
  }
}

/**
 * Whether `error` is Redis refusing `command` (lower case) to this user for good: a NOPERM that
 * names it (or one of its subcommands, `'xinfo|stream'`), or no such command (renamed away). One
 * that names another command (one queued beside it in a MULTI), or a key, says nothing of it.
 */
export function refusedCommand(error: unknown, command: string): boolean {
  return (
    error instanceof ErrorReply &&
    new RegExp(`^(NOPERM .*'${command}['|]|ERR unknown command [\`']${command}[\`'])`, 'i').test(
      error.message,
    )
  );
}
