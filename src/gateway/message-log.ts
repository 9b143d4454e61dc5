import type { Store } from '../domain/ports.js';
import type { FrameRecord } from '../ocpp/connection.js';

/**
 * The per-station OCPP message log. Frames are buffered and written in batches a few times a
 * second: the log is for people reading it later, so it never delays an answer to a station.
 */
export class MessageLogWriter {
  private buffer: FrameRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly opts: { flushMs: number; retentionDays: number; maxPerStation: number; onError: (err: unknown) => void },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.opts.flushMs);
    this.timer.unref();
    this.pruneTimer = setInterval(() => void this.prune(new Date()), 3600_000);
    this.pruneTimer.unref();
  }

  append(record: FrameRecord): void {
    this.buffer.push(record);
  }

  flush(): Promise<void> {
    if (this.buffer.length === 0) return this.writing;
    const batch = this.buffer;
    this.buffer = [];
    this.writing = this.writing.then(() => this.write(batch)).catch(this.opts.onError);
    return this.writing;
  }

  /**
   * Writes a batch a slice at a time, each its own write: with 10,000 stations the frames of 200 ms
   * belong to hundreds of stations, each row a different page of the log's index, and one commit of
   * them all held the event loop for several milliseconds (the steady benchmark's p99).
   */
  private async write(batch: FrameRecord[]): Promise<void> {
    for (let i = 0; i < batch.length; i += MessageLogWriter.slice) {
      await this.store.appendMessageLog(
        batch.slice(i, i + MessageLogWriter.slice).map((r) => ({
          stationId: r.stationId,
          at: r.at.toISOString(),
          direction: r.direction,
          messageType: r.messageType,
          messageId: r.messageId,
          action: r.action,
          frame: r.frame,
        })),
      );
    }
  }

  private static readonly slice = 64;

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
