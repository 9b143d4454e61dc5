import { deflateSync, inflateSync } from 'node:zlib';
import type { MessageLogBatch as MessageLogBatchPort } from '../domain/ports.js';
import type { MessageLogEntry, NewMessageLogEntry } from '../domain/types.js';

/**
 * How the message log is stored: one row per station per write (a chunk), its frames together in
 * one text, instead of one row per frame.
 *
 * Under load a station's frames come back to back, and as rows each frame was an entry in the table
 * and in the index by station, every station's entries on a different index page. A chunk is one
 * entry in each for all of a station's frames of one flush. The log is only ever written by station
 * in arrival order and read by station newest first, so nothing needs the frames apart.
 *
 * An entry's id is its chunk's id × `framesPerChunk` + its position in the chunk: ids still grow with
 * arrival order within a station, and serve as the paging cursor as the row ids did.
 */
export const framesPerChunk = 1024;

/**
 * A chunk whose text is at least this many bytes (UTF-8) is stored deflated. Under saturate a
 * station's chunk of 200 ms holds about 50 MeterValues and their answers, about 940 bytes per
 * MeterValues (1,074 as JSON before the frames were kept apart); zlib at level 1 makes it about 65
 * bytes for 2-3 µs per MeterValues, where writing those bytes (the WAL, then the checkpoint) cost
 * about twice that. Each call costs 15-20 µs whatever its size, which the chunk of one or two frames
 * a quiet station writes would not earn back.
 */
export const deflateFromBytes = 4096;

/**
 * A chunk's text. Chunks written before session 8 are one JSON array of
 * [at, direction, messageType, messageId, action, frame]. Since, a chunk is the JSON array of
 * [at, direction, messageType, messageId, action, frame length] for its frames, a newline, and the
 * frames' texts one after another: JSON.stringify escaped every quote of every frame (a MeterValues
 * is mostly quotes), 1.8 µs per MeterValues and its answer in a script against 0.5-0.8 so. JSON never
 * has a raw newline, which tells the two apart. Lengths count UTF-16 code units, which storing the
 * text as UTF-8 and reading it back keeps (a lone surrogate, which UTF-8 cannot hold, is stored as
 * U+FFFD, also one unit).
 */
type StoredFrame = [string, 'in' | 'out', number | null, string | null, string | null, string];
type StoredFrameHead = [string, 'in' | 'out', number | null, string | null, string | null, number];

export interface MessageLogChunk {
  stationId: string;
  /** The earliest and the latest `at` of its frames (a chunk is pruned by age once all of it is old). */
  firstAt: string;
  lastAt: string;
  frameCount: number;
  /** The text of the frames, in arrival order (see StoredFrameHead); '' when it is stored deflated. */
  entries: string;
  /** The text deflated, when it is at least `deflateFromBytes` long (then stored instead). */
  entriesDeflated: Buffer | null;
}

/** A chunk row as read back. */
export interface MessageLogChunkRow {
  id: number;
  station_id: string;
  entries: string;
  entries_deflated: Buffer | null;
}

/** One station's frames of a batch, up to `framesPerChunk`: byte ranges of the batch's text. */
interface PendingChunk {
  stationId: string;
  /** Start and end of each frame's head (its JSON), then of its text, four numbers a frame. */
  ranges: number[];
  firstAt: number;
  lastAt: number;
}

/**
 * Frames gathered for the log until they are written, already as the bytes of their chunks' texts.
 *
 * Why: the log is written every 200 ms, and under saturate a flush holds about 5,000 frames. Kept as
 * records (the frame's text, its Date, its id) they were most of what the young generation still
 * held at each scavenge: with the log switched off (an experiment), a scavenge took 1.3-1.7 ms
 * against 3.8-4.5 ms, and the garbage collector's time per MeterValues fell from about 5 µs to under
 * 2. Here a frame is written into one buffer outside the JavaScript heap as it comes; what is left
 * on the heap is four numbers a frame.
 */
export class MessageLogBatch implements MessageLogBatchPort {
  private text: Buffer;
  private used = 0;
  private readonly current = new Map<string, PendingChunk>();
  /** Chunks in the order they were begun: a station's in the order its frames came, stations in the order they first appear. */
  private readonly order: PendingChunk[] = [];
  private added = 0;

  /**
   * @param text a buffer to gather the text in (one a written batch gave back, see `release`), or
   *   the bytes to expect. Each new buffer outside the heap counts towards what makes V8 run a full
   *   collection: a new one of 2.5 MB per flush under saturate brought 19-27 of them per 15 s, against
   *   1-3 before.
   */
  constructor(text: Buffer | number = 64 * 1024) {
    this.text = typeof text === 'number' ? Buffer.allocUnsafe(Math.max(4096, text)) : text;
  }

  /** The buffer of the text, for another batch once this one's chunks are made; this batch is empty after. */
  release(): Buffer {
    const text = this.text;
    this.text = Buffer.alloc(0);
    this.used = 0;
    this.current.clear();
    this.order.length = 0;
    this.added = 0;
    return text;
  }

  /** Frames added so far. */
  get frames(): number {
    return this.added;
  }

  /** Bytes of text held so far (for sizing the next batch). */
  get bytes(): number {
    return this.used;
  }

  /** Adds a frame; `atMs` is its time, in ms since the epoch. */
  add(stationId: string, atMs: number, direction: 'in' | 'out', messageType: number | null, messageId: string | null, action: string | null, frame: string): void {
    let chunk = this.current.get(stationId);
    if (!chunk || chunk.ranges.length >= framesPerChunk * 4) {
      chunk = { stationId, ranges: [], firstAt: atMs, lastAt: atMs };
      this.current.set(stationId, chunk);
      this.order.push(chunk);
    }
    if (atMs < chunk.firstAt) chunk.firstAt = atMs;
    if (atMs > chunk.lastAt) chunk.lastAt = atMs;
    const head = `[${jsonText(isoOf(atMs))},"${direction}",${messageType === null ? 'null' : String(messageType)},${messageId === null ? 'null' : jsonText(messageId)},${action === null ? 'null' : jsonText(action)},${frame.length}]`;
    // UTF-8 takes at most three bytes per UTF-16 unit.
    this.reserve(3 * (head.length + frame.length));
    const headStart = this.used;
    this.used += this.text.write(head, this.used, 'utf8');
    const frameStart = this.used;
    this.used += this.text.write(frame, this.used, 'utf8');
    chunk.ranges.push(headStart, frameStart, frameStart, this.used);
    this.added += 1;
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.text.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.text.length, this.used + bytes));
    this.text.copy(grown, 0, 0, this.used);
    this.text = grown;
  }

  /** The chunks, in order, each its text (or that text deflated) ready to store. */
  chunks(): MessageLogChunk[] {
    return this.order.map((c) => this.encode(c));
  }

  /**
   * The chunks in the slices `slicesOf` makes, each slice encoded only when its function is called:
   * by its write, inside the transaction. Why: encoded all at once before the first write, the
   * texts of the later slices waited through the earlier slices' commits and log syncs, long enough
   * to outlive a scavenge; under `steady` (10,000 stations) they were a third of what V8's sampling
   * heap profiler found surviving one. The batch must not be released before the last slice is
   * encoded (after `release` a slice's function throws).
   */
  encodedSlices(maxChunks = 64, maxFrames = 256): Array<() => MessageLogChunk[]> {
    return sliced(this.order, (c) => c.ranges.length / 4, maxChunks, maxFrames).map((slice) => () => slice.map((c) => this.encode(c)));
  }

  private encode(c: PendingChunk): MessageLogChunk {
    const { ranges } = c;
    const frameCount = ranges.length / 4;
    let size = frameCount + 2; // '[', the commas, ']' and the newline
    for (let i = 0; i < ranges.length; i += 2) size += ranges[i + 1]! - ranges[i]!;
    const out = scratchOf(size);
    let at = 0;
    out[at++] = 0x5b; // [
    for (let i = 0; i < ranges.length; i += 4) {
      if (i > 0) out[at++] = 0x2c; // ,
      at += this.text.copy(out, at, ranges[i]!, ranges[i + 1]!);
    }
    out[at++] = 0x5d; // ]
    out[at++] = 0x0a; // newline
    for (let i = 2; i < ranges.length; i += 4) at += this.text.copy(out, at, ranges[i]!, ranges[i + 1]!);
    const deflate = size >= deflateFromBytes;
    return {
      stationId: c.stationId,
      firstAt: isoOf(c.firstAt),
      lastAt: isoOf(c.lastAt),
      frameCount,
      entries: deflate ? '' : out.toString('utf8', 0, size),
      entriesDeflated: deflate ? deflateSync(out.subarray(0, size), { level: 1 }) : null,
    };
  }
}

/**
 * A write's worth of chunks at a time, whole chunks in order: at most `maxChunks` rows, and a slice
 * ends once it holds `maxFrames` frames or more.
 */
export function slicesOf(chunks: MessageLogChunk[], maxChunks = 64, maxFrames = 256): MessageLogChunk[][] {
  return sliced(chunks, (c) => c.frameCount, maxChunks, maxFrames);
}

function sliced<T>(items: readonly T[], framesOf: (item: T) => number, maxChunks: number, maxFrames: number): T[][] {
  const slices: T[][] = [];
  let slice: T[] = [];
  let frames = 0;
  for (const item of items) {
    slice.push(item);
    frames += framesOf(item);
    if (slice.length >= maxChunks || frames >= maxFrames) {
      slices.push(slice);
      slice = [];
      frames = 0;
    }
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

/**
 * The chunks of one write: the entries of each station in the order they came, stations in the
 * order they first appear, at most `framesPerChunk` frames per chunk.
 */
export function chunksOf(entries: readonly NewMessageLogEntry[]): MessageLogChunk[] {
  const batch = new MessageLogBatch();
  for (const e of entries) batch.add(e.stationId, typeof e.at === 'string' ? Date.parse(e.at) : e.at.getTime(), e.direction, e.messageType, e.messageId, e.action, e.frame);
  return batch.chunks();
}

/**
 * One buffer to lay out each chunk's text in before it is deflated or decoded, reused: a chunk's
 * text is done with before the next is made. One that a very large chunk grew past 4 MB is not kept.
 */
let scratch = Buffer.allocUnsafe(64 * 1024);
function scratchOf(size: number): Buffer {
  if (size <= scratch.length) return scratch;
  const grown = Buffer.allocUnsafe(Math.max(size, 2 * scratch.length));
  if (grown.length <= 4 * 1024 * 1024) scratch = grown;
  return grown;
}

/** A string as JSON; an id or action of printable ASCII without quote or backslash, as nearly all are, needs no escaping. */
const plainText = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const jsonText = (text: string) => (plainText.test(text) ? `"${text}"` : JSON.stringify(text));

/** toISOString of the last millisecond asked, kept: under load the frames of a flush come many to a millisecond. */
let lastMs = Number.NaN;
let lastIso = '';
function isoOf(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}

/** A chunk's entries, newest first, with their ids. */
export function decodeChunkNewestFirst(row: MessageLogChunkRow): MessageLogEntry[] {
  const text = row.entries_deflated ? inflateSync(row.entries_deflated).toString('utf8') : row.entries;
  const base = Number(row.id) * framesPerChunk;
  const out: MessageLogEntry[] = [];
  const newline = text.indexOf('\n');
  if (newline < 0) {
    const stored = JSON.parse(text) as StoredFrame[];
    for (let i = stored.length - 1; i >= 0; i--) {
      const [at, direction, messageType, messageId, action, frame] = stored[i]!;
      out.push({ id: base + i, stationId: row.station_id, at, direction, messageType, messageId, action, frame });
    }
    return out;
  }
  const heads = JSON.parse(text.slice(0, newline)) as StoredFrameHead[];
  const starts: number[] = [];
  let position = newline + 1;
  for (const head of heads) {
    starts.push(position);
    position += head[5];
  }
  if (position !== text.length) throw new Error(`message log chunk ${row.id}: its frames are ${text.length - newline - 1} characters, its heads say ${position - newline - 1}`);
  for (let i = heads.length - 1; i >= 0; i--) {
    const [at, direction, messageType, messageId, action, length] = heads[i]!;
    out.push({ id: base + i, stationId: row.station_id, at, direction, messageType, messageId, action, frame: text.slice(starts[i]!, starts[i]! + length) });
  }
  return out;
}

/** The chunk an entry id belongs to. */
export const chunkIdOf = (entryId: number): number => Math.floor(entryId / framesPerChunk);
