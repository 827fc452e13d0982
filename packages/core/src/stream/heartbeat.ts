/** A connection the heartbeat wheel visits once per interval. */
export interface HeartbeatTarget {
  /** Set by the connection on every write; the wheel clears it on each visit. */
  busy: boolean;
  /** Write a heartbeat: called only when nothing was written for a whole interval. */
  beat(): void;
}

/** How long one tick of a wheel aims to be: small enough to spread the writes finely. */
const TICK_MS = 10;
/** Most slots of a wheel, so its memory does not grow with the interval (a day is 1,000 ticks). */
const MAX_SLOTS = 1000;

/**
 * One timer wheel per heartbeat interval, shared by every connection in the process. A wheel has
 * `interval / 10 ms` slots (at most 1,000) and visits one slot per tick, so a tick touches only its share of the
 * connections instead of every one at once. Connections cost no timer of their own.
 */
class HeartbeatWheel {
  private readonly slots: Set<HeartbeatTarget>[];
  private readonly tickMs: number;
  private cursor = 0;
  private size = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    interval: number,
    private readonly onEmpty: () => void,
  ) {
    // Whole milliseconds: Node runs a fractional delay at its truncated length, and a wheel of 200
    // ticks of 9.995 ms would beat before a whole idle interval. A turn is at least the interval,
    // and less than a tick longer.
    const whole = Math.ceil(interval);
    this.tickMs = whole <= TICK_MS ? whole : Math.max(TICK_MS, Math.ceil(whole / MAX_SLOTS));
    const count = Math.ceil(whole / this.tickMs);
    this.slots = Array.from({ length: count }, () => new Set());
  }

  private next = 0;

  /**
   * Adds a target to the slots in turn, so connections that arrive together (a reconnect storm)
   * still spread over every tick. It starts busy: its first visit only clears the flag, so its
   * first heartbeat comes one to two intervals after it joined, never sooner.
   */
  add(target: HeartbeatTarget): Set<HeartbeatTarget> {
    const slot = this.slots[this.next]!;
    this.next = (this.next + 1) % this.slots.length;
    target.busy = true;
    slot.add(target);
    if (this.size++ === 0) this.start();
    return slot;
  }

  remove(target: HeartbeatTarget, slot: Set<HeartbeatTarget>): void {
    if (!slot.delete(target)) return;
    if (--this.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
      this.onEmpty();
    }
  }

  private start(): void {
    this.timer = setInterval(() => this.tick(), this.tickMs);
    // A wheel must never keep the process alive on its own.
    (this.timer as { unref?: () => void }).unref?.();
  }

  private tick(): void {
    const slot = this.slots[this.cursor]!;
    this.cursor = (this.cursor + 1) % this.slots.length;
    for (const target of slot) {
      if (target.busy) target.busy = false;
      else target.beat();
    }
  }

  /** Number of targets, for leak checks. */
  get count(): number {
    return this.size;
  }
}

const wheels = new Map<number, HeartbeatWheel>();

/**
 * @internal Joins the wheel of `interval`; keep the slot and pass it to {@link leaveHeartbeat}
 * (no closure per registration, unlike {@link scheduleHeartbeat}).
 */
export function joinHeartbeat(interval: number, target: HeartbeatTarget): Set<HeartbeatTarget> {
  let wheel = wheels.get(interval);
  if (!wheel) {
    wheel = new HeartbeatWheel(interval, () => wheels.delete(interval));
    wheels.set(interval, wheel);
  }
  return wheel.add(target);
}

/** @internal */
export function leaveHeartbeat(interval: number, target: HeartbeatTarget, slot: Set<HeartbeatTarget>): void {
  wheels.get(interval)?.remove(target, slot);
}

/** A registration with the shared heartbeat wheel; call the returned function to leave it. */
export function scheduleHeartbeat(interval: number, target: HeartbeatTarget): () => void {
  const slot = joinHeartbeat(interval, target);
  return () => leaveHeartbeat(interval, target, slot);
}

/** How many connections are registered for heartbeats, across all intervals (for leak checks). */
export function heartbeatCount(): number {
  let total = 0;
  for (const wheel of wheels.values()) total += wheel.count;
  return total;
}
