import { deflateSync, inflateSync } from 'node:zlib';
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
 * A chunk whose text is at least this long is stored deflated. Under saturate a station's chunk of
 * 200 ms holds about 50 MeterValues and their answers, about 940 characters per MeterValues (1,074 as
 * JSON before the frames were kept apart); zlib at level 1 makes it about 65 bytes for 2-3 µs per
 * MeterValues, where writing those bytes (the WAL, then the checkpoint) cost about twice that. Each
 * call costs 15-20 µs whatever its size, which the chunk of one or two frames a quiet station
 * writes would not earn back.
 */
export const deflateFromChars = 4096;

/**
 * A chunk's text. Chunks written before session 8 are one JSON array of
 * [at, direction, messageType, messageId, action, frame]. Since, a chunk is the JSON array of
 * [at, direction, messageType, messageId, action, frame length] for its frames, a newline, and the
 * frames' texts one after another: JSON.stringify escaped every quote of every frame (a MeterValues
 * is mostly quotes), 1.8 µs per MeterValues and its answer in a script against 0.5-0.8 so. JSON.stringify
 * never writes a newline, which tells the two apart. Lengths count UTF-16 code units, which
 * storing the text as UTF-8 and reading it back keeps.
 */
type StoredFrame = [string, 'in' | 'out', number | null, string | null, string | null, string];
type StoredFrameHead = [string, 'in' | 'out', number | null, string | null, string | null, number];

export interface MessageLogChunk {
  stationId: string;
  /** The earliest and the latest `at` of its frames (a chunk is pruned by age once all of it is old). */
  firstAt: string;
  lastAt: string;
  frameCount: number;
  /** The text of the frames, in arrival order (see StoredFrameHead). */
  entries: string;
  /** The same text deflated, when it is at least `deflateFromChars` long (then stored instead). */
  entriesDeflated: Buffer | null;
}

/** A chunk row as read back. */
export interface MessageLogChunkRow {
  id: number;
  station_id: string;
  entries: string;
  entries_deflated: Buffer | null;
}

/**
 * The chunks of one write: the entries of each station in the order they came, stations in the
 * order they first appear, at most `framesPerChunk` frames per chunk.
 */
export function chunksOf(entries: readonly NewMessageLogEntry[]): MessageLogChunk[] {
  // A flush is grouped by station already (MessageLogWriter); compare with the last station before any lookup.
  const byStation = new Map<string, NewMessageLogEntry[][]>();
  const order: NewMessageLogEntry[][] = [];
  let lastStation: string | undefined;
  let last: NewMessageLogEntry[] | undefined;
  for (const e of entries) {
    if (e.stationId !== lastStation || !last || last.length >= framesPerChunk) {
      const chunks = byStation.get(e.stationId);
      let current = chunks?.at(-1);
      if (!current || current.length >= framesPerChunk) {
        current = [];
        order.push(current);
        if (chunks) chunks.push(current);
        else byStation.set(e.stationId, [current]);
      }
      lastStation = e.stationId;
      last = current;
    }
    last.push(e);
  }
  return order.map(encodeChunk);
}

function encodeChunk(entries: readonly NewMessageLogEntry[]): MessageLogChunk {
  const heads: StoredFrameHead[] = [];
  let frames = '';
  let firstAt = '';
  let lastAt = '';
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    // The connection's records carry the Date they were taken at.
    const at = typeof e.at === 'string' ? e.at : isoOf(e.at);
    heads.push([at, e.direction, e.messageType, e.messageId, e.action, e.frame.length]);
    frames += e.frame;
    // Times are ISO strings of one length: text order is time order.
    if (i === 0 || at < firstAt) firstAt = at;
    if (i === 0 || at > lastAt) lastAt = at;
  }
  // One JSON.stringify of the heads: writing the text out by hand, string by string, cost twice as much.
  const text = `${JSON.stringify(heads)}\n${frames}`;
  const entriesDeflated = text.length >= deflateFromChars ? deflateSync(text, { level: 1 }) : null;
  return { stationId: entries[0]!.stationId, firstAt, lastAt, frameCount: entries.length, entries: text, entriesDeflated };
}

/** toISOString of the last millisecond asked, kept: under load the frames of a flush come many to a millisecond. */
let lastMs = Number.NaN;
let lastIso = '';
function isoOf(at: Date): string {
  const ms = at.getTime();
  if (ms !== lastMs) {
    lastIso = at.toISOString();
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
