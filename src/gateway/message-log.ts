import type { MessageLogBatch, Store } from '../domain/ports.js';
import type { FrameRecord } from '../ocpp/connection.js';

/**
 * The per-station OCPP message log. Frames are gathered in a batch of the store's (off the
 * JavaScript heap, see MessageLogBatch) and written a few times a second: the log is for people
 * reading it later, so it never delays an answer to a station.
 */
export class MessageLogWriter {
  private batch: MessageLogBatch;
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly opts: { flushMs: number; retentionDays: number; maxPerStation: number; onError: (err: unknown) => void },
  ) {
    this.batch = store.newMessageLogBatch();
  }

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs);
    this.timer.unref();
    this.pruneTimer = setInterval(() => void this.prune(new Date()), 3600_000);
    this.pruneTimer.unref();
  }

  append(record: FrameRecord): void {
    this.batch.add(record.stationId, record.at.getTime(), record.direction, record.messageType, record.messageId, record.action, record.frame);
  }

  flush(): Promise<void> {
    if (this.batch.frames === 0) return this.writing;
    const batch = this.batch;
    // The next batch expects about as much as this one held, so that it seldom has to grow.
    this.batch = this.store.newMessageLogBatch(batch.bytes);
    this.writing = this.writing.then(() => this.store.appendMessageLogBatch(batch)).catch(this.opts.onError);
    return this.writing;
  }

  async prune(now: Date): Promise<number> {
    const olderThan = new Date(now.getTime() - this.opts.retentionDays * 86400_000).toISOString();
    try {
      return await this.store.pruneMessageLog(olderThan, this.opts.maxPerStation);
    } catch (err) {
      this.opts.onError(err);
      return 0;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.pruneTimer);
    await this.flush();
  }
}
