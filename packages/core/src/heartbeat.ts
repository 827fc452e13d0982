/** A connection the heartbeat wheel visits once per interval. */
export interface HeartbeatTarget {
  /** Set by the connection on every write; the wheel clears it on each visit. */
  busy: boolean;
  /** Write a heartbeat: called only when nothing was written for a whole interval. */
  beat(): void;
}

/** How long one tick of a wheel aims to be: small enough to spread the writes finely. */
const TICK_MS = 100;

/**
 * One timer wheel per heartbeat interval, shared by every connection in the process. A wheel has
 * `interval / 100 ms` slots and visits one slot per tick, so a tick touches only its share of the
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
    const count = Math.max(1, Math.round(interval / TICK_MS));
    this.tickMs = interval / count;
    this.slots = Array.from({ length: count }, () => new Set());
  }

  /** Adds a target to the slot visited last, so its first visit is one whole interval away. */
  add(target: HeartbeatTarget): Set<HeartbeatTarget> {
    const slot = this.slots[(this.cursor + this.slots.length - 1) % this.slots.length]!;
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

/** A registration with the shared heartbeat wheel; call the returned function to leave it. */
export function scheduleHeartbeat(interval: number, target: HeartbeatTarget): () => void {
  let wheel = wheels.get(interval);
  if (!wheel) {
    wheel = new HeartbeatWheel(interval, () => wheels.delete(interval));
    wheels.set(interval, wheel);
  }
  const slot = wheel.add(target);
  const owner = wheel;
  return () => owner.remove(target, slot);
}

/** How many connections are registered for heartbeats, across all intervals (for leak checks). */
export function heartbeatCount(): number {
  let total = 0;
  for (const wheel of wheels.values()) total += wheel.count;
  return total;
}
