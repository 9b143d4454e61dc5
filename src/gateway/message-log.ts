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
   * belong to hundreds of stations, and one commit of them all held the event loop for several
   * milliseconds (the steady benchmark's p99). The store keeps a station's frames of one write as
   * one row (store/message-log-chunks.ts), so a slice is whole stations, in the order they first
   * appear: up to 64 stations (64 rows) or about 256 frames, whichever comes first (with 100
   * stations sending back to back, a transaction of 256 frames took 0.8 ms to insert and commit,
   * one of 1024 frames 3 ms, for the same cost per frame; docs/adr/0005). Cut by frames in arrival
   * order instead, those stations' chunks would be of one frame each.
   */
  private async write(batch: FrameRecord[]): Promise<void> {
    const byStation = new Map<string, FrameRecord[]>();
    for (const r of batch) {
      const frames = byStation.get(r.stationId);
      if (frames) frames.push(r);
      else byStation.set(r.stationId, [r]);
    }
    // The records go as they are: the store writes their Date as ISO-8601 text.
    let slice: FrameRecord[] = [];
    let stations = 0;
    for (const frames of byStation.values()) {
      for (const r of frames) slice.push(r);
      stations += 1;
      if (stations >= MessageLogWriter.sliceStations || slice.length >= MessageLogWriter.sliceFrames) {
        await this.store.appendMessageLog(slice);
        slice = [];
        stations = 0;
      }
    }
    if (slice.length > 0) await this.store.appendMessageLog(slice);
  }

  private static readonly sliceStations = 64;
  private static readonly sliceFrames = 256;

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
