/**
 * WebSocket upgrades waiting to be admitted, oldest first, started a few at a time.
 *
 * Why: in a reconnect storm the kernel hands Node thousands of upgrade requests at once, and libuv
 * runs every one of their callbacks in a single poll phase. When each callback also did the
 * admission (a station lookup, the handshake and its write) one phase took over 2 s and every
 * other socket, `/healthz` among them, waited behind it. Here a callback only queues its upgrade;
 * the admissions run from `setImmediate`, at most `concurrency` at a time, and a finished one never
 * starts the next in the same turn, so each turn of the event loop does a bounded amount of it.
 * The TLS listener queues its handshakes the same way (tls-listener.ts).
 */
export class AdmissionQueue {
  private readonly jobs: Array<(() => Promise<void>) | undefined> = [];
  private head = 0;
  private active = 0;
  private scheduled = false;

  constructor(private readonly concurrency: number) {
    if (!(concurrency >= 1)) throw new Error(`admission concurrency must be at least 1, got ${concurrency}`);
  }

  /** Upgrades queued or being admitted. */
  get size(): number {
    return this.jobs.length - this.head + this.active;
  }

  /** Jobs started and not finished. */
  get running(): number {
    return this.active;
  }

  /** Queues an admission; it starts on a later turn of the event loop, never inside this call. */
  push(job: () => Promise<void>): void {
    this.jobs.push(job);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.head >= this.jobs.length || this.active >= this.concurrency) return;
    this.scheduled = true;
    setImmediate(this.startSome);
  }

  private readonly startSome = (): void => {
    this.scheduled = false;
    while (this.active < this.concurrency && this.head < this.jobs.length) {
      const job = this.jobs[this.head]!;
      this.jobs[this.head] = undefined;
      this.head += 1;
      this.active += 1;
      void job()
        .catch(() => {
          /* a job reports its own failure; the queue only keeps count */
        })
        .finally(() => {
          this.active -= 1;
          this.schedule();
        });
    }
    // Drop the consumed front once it is most of the array, so a long storm does not keep it.
    if (this.head > 1024 && this.head * 2 > this.jobs.length) {
      this.jobs.splice(0, this.head);
      this.head = 0;
    }
  };
}
