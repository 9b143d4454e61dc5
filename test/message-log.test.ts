import { describe, expect, it } from 'vitest';
import { testDatabases } from './helpers/csms.js';
import { storePerTest } from './helpers/store.js';
import type { Store } from '../src/domain/ports.js';
import type { MessageLogEntry } from '../src/domain/types.js';
import { MessageLogWriter } from '../src/gateway/message-log.js';
import type { KyselyStore } from '../src/store/kysely-store.js';
import { inflateSync } from 'node:zlib';
import { chunksOf, decodeChunkNewestFirst, deflateFromBytes, framesPerChunk, MessageLogBatch, slicesOf, type MessageLogChunk } from '../src/store/message-log-chunks.js';

type NewEntry = Omit<MessageLogEntry, 'id'>;

const at = (second: number) => new Date(Date.UTC(2026, 0, 1) + second * 1000).toISOString();

/** A CALL in, or its CALLRESULT out, of a station; `n` makes every frame different. */
const frame = (stationId: string, n: number, action = 'MeterValues'): NewEntry => {
  const inbound = n % 2 === 0;
  const messageId = `${stationId}-${Math.floor(n / 2)}`;
  return {
    stationId,
    at: at(n),
    direction: inbound ? 'in' : 'out',
    messageType: inbound ? 2 : 3,
    messageId,
    action,
    frame: inbound ? JSON.stringify([2, messageId, action, { n, text: 'quote " backslash \\ unicode é' }]) : JSON.stringify([3, messageId, {}]),
  };
};

/** Without the id: what was appended. */
const bare = ({ id: _id, ...rest }: MessageLogEntry): NewEntry => rest;

/** A chunk read back as the store reads its row, oldest first, without ids. */
const readBack = (chunk: MessageLogChunk, deflated = false) =>
  decodeChunkNewestFirst({ id: 1, station_id: chunk.stationId, entries: deflated ? '' : chunk.entries, entries_deflated: deflated ? chunk.entriesDeflated : null })
    .map(bare)
    .reverse();

describe('chunksOf', () => {
  it('groups a write by station in arrival order, stations in the order they first appear', () => {
    const a = [frame('A', 0), frame('A', 1), frame('A', 2)];
    const b = [frame('B', 0), frame('B', 1)];
    const chunks = chunksOf([a[0]!, b[0]!, a[1]!, b[1]!, a[2]!]);
    expect(chunks.map((c) => [c.stationId, c.frameCount, c.firstAt, c.lastAt])).toEqual([
      ['A', 3, at(0), at(2)],
      ['B', 2, at(0), at(1)],
    ]);
    expect(readBack(chunks[0]!)).toEqual(a);
    expect(readBack(chunks[1]!)).toEqual(b);
  });

  it("keeps each frame's text as it came, whatever it holds: nulls, quotes, newlines, control characters, astral and lone surrogates; Date times as ISO text", () => {
    const odd: NewEntry[] = [
      { ...frame('A', 0), messageType: null, messageId: null, action: null, frame: 'not json \n \u0001 \ud800 "x" \\' },
      { ...frame('A', 1), messageId: 'id "with" quotes\u2028\n', action: 'Ünïcödé' },
      { ...frame('A', 2), frame: '' },
      { ...frame('A', 3), frame: '[2,"😀\n",{}]\n' },
      frame('A', 4),
    ];
    const chunk = chunksOf(odd)[0]!;
    // A lone surrogate cannot be written as UTF-8, in the chunk as in the database: it becomes U+FFFD, one unit as it was.
    const asStored = odd.map((e) => ({ ...e, frame: e.frame.replace('\ud800', '\ufffd') }));
    expect(readBack(chunk)).toEqual(asStored);
    // The frames' texts are there as they are, not escaped into JSON.
    expect(chunk.entries.endsWith(asStored.map((e) => e.frame).join(''))).toBe(true);
    // The connection's records carry a Date; three share one millisecond, as under load.
    const asRecords = odd.map((e, i) => ({ ...e, at: new Date(Date.parse(e.at) + (i === 2 ? 1 : 0)) }));
    asRecords[1]!.at = new Date(asRecords[0]!.at.getTime());
    const fromRecords = chunksOf(asRecords)[0]!;
    expect(readBack(fromRecords)).toEqual(asStored.map((e, i) => ({ ...e, at: asRecords[i]!.at.toISOString() })));
    expect([fromRecords.firstAt, fromRecords.lastAt]).toEqual([asRecords[0]!.at.toISOString(), asRecords[4]!.at.toISOString()]);
  });

  it('reads chunks written before session 8, one JSON array of frames', () => {
    const old = [frame('A', 0), { ...frame('A', 1), frame: 'line\nbreak "quoted"' }, frame('A', 2)];
    const entries = JSON.stringify(old.map((e) => [e.at, e.direction, e.messageType, e.messageId, e.action, e.frame]));
    expect(decodeChunkNewestFirst({ id: 3, station_id: 'A', entries, entries_deflated: null })).toEqual(
      [...old].reverse().map((e, i) => ({ ...e, id: 3 * framesPerChunk + old.length - 1 - i })),
    );
  });

  it('refuses a chunk whose frames do not add up to the lengths it gives', () => {
    const chunk = chunksOf([frame('A', 0), frame('A', 1)])[0]!;
    expect(() => decodeChunkNewestFirst({ id: 9, station_id: 'A', entries: chunk.entries.slice(0, -1), entries_deflated: null })).toThrow(/message log chunk 9/);
  });

  it(`deflates a chunk whose text is ${deflateFromBytes} bytes or more, and only such a chunk`, () => {
    const few = chunksOf([frame('A', 0), frame('A', 1)])[0]!;
    expect(Buffer.byteLength(few.entries)).toBeLessThan(deflateFromBytes);
    expect(few.entriesDeflated).toBeNull();
    const frames = Array.from({ length: 100 }, (_, n) => frame('A', n));
    const many = chunksOf(frames)[0]!;
    // Deflated, the text is stored only so.
    expect(many.entries).toBe('');
    const text = inflateSync(many.entriesDeflated!);
    expect(text.length).toBeGreaterThanOrEqual(deflateFromBytes);
    expect(many.entriesDeflated!.length).toBeLessThan(text.length / 5);
    expect(readBack(many, true)).toEqual(frames);
  });

  it('a batch gathered in the buffer another gave back makes the same chunks, and the first chunks stay as they were', () => {
    const add = (batch: MessageLogBatch, e: NewEntry) => batch.add(e.stationId, Date.parse(e.at), e.direction, e.messageType, e.messageId, e.action, e.frame);
    const first = new MessageLogBatch(4096);
    const a = Array.from({ length: 60 }, (_, n) => frame('A', n));
    const c = [frame('C', 0), frame('C', 1)];
    for (const e of [...a, ...c]) add(first, e);
    const firstChunks = first.chunks();
    const text = first.release();
    expect(first.frames).toBe(0);
    expect(first.chunks()).toEqual([]);
    const second = new MessageLogBatch(text);
    const b = Array.from({ length: 60 }, (_, n) => frame('B', n));
    for (const e of b) add(second, e);
    expect(second.chunks().map((chunk) => readBack(chunk, chunk.entriesDeflated !== null))).toEqual([b]);
    expect(firstChunks.map((chunk) => readBack(chunk, chunk.entriesDeflated !== null))).toEqual([a, c]);
  });

  it(`splits a station's frames into chunks of at most ${framesPerChunk}`, () => {
    const many = Array.from({ length: 2 * framesPerChunk + 5 }, (_, n) => frame('A', n));
    expect(chunksOf([...many.slice(0, 10), frame('B', 0), ...many.slice(10)]).map((c) => [c.stationId, c.frameCount])).toEqual([
      ['A', framesPerChunk],
      ['B', 1],
      ['A', framesPerChunk],
      ['A', 5],
    ]);
    expect(chunksOf([])).toEqual([]);
  });
});

describe('slicesOf', () => {
  it('cuts whole chunks into writes of at most 64 rows, a write ending once it holds 256 frames', () => {
    const chunkOf = (frameCount: number) => ({ frameCount }) as MessageLogChunk;
    expect(slicesOf(Array.from({ length: 100 }, () => chunkOf(20))).map((s) => s.length)).toEqual([...Array(7).fill(13), 9]);
    expect(slicesOf(Array.from({ length: 200 }, () => chunkOf(1))).map((s) => s.length)).toEqual([64, 64, 64, 8]);
    expect(slicesOf([chunkOf(1000), chunkOf(1), chunkOf(300)]).map((s) => s.map((c) => c.frameCount))).toEqual([[1000], [1, 300]]);
    expect(slicesOf([])).toEqual([]);
  });

  it("a batch's encoded slices are its chunks as slicesOf cuts them, each encoded when asked", () => {
    const batch = new MessageLogBatch();
    // 150 quiet stations (one frame each) and one that talks (300 frames): slices of 64 rows, or of 256 frames.
    for (let i = 0; i < 150; i++) {
      const e = frame(`CP-${i}`, 0);
      batch.add(e.stationId, Date.parse(e.at), e.direction, e.messageType, e.messageId, e.action, e.frame);
    }
    for (let n = 0; n < 300; n++) {
      const e = frame('CP-busy', n);
      batch.add(e.stationId, Date.parse(e.at), e.direction, e.messageType, e.messageId, e.action, e.frame);
    }
    const whole = batch.chunks();
    const slices = batch.encodedSlices();
    expect(slices.map((encode) => encode().map((c) => c.stationId))).toEqual(slicesOf(whole).map((s) => s.map((c) => c.stationId)));
    expect(slices.flatMap((encode) => encode())).toEqual(whole);
    // Encoding reads the batch's text: after release there is nothing left to encode.
    batch.release();
    expect(() => slices[0]!()).toThrow();
  });
});

describe('MessageLogWriter', () => {
  it('gathers a flush in a batch of the store, each station one chunk per flush, frames as they came', async () => {
    const written: MessageLogChunk[][] = [];
    const store = {
      newMessageLogBatch: (bytes?: number) => new MessageLogBatch(bytes),
      appendMessageLogBatch: async (batch: MessageLogBatch) => void written.push(batch.chunks()),
    } as unknown as Store;
    const writer = new MessageLogWriter(store, { flushMs: 200, retentionDays: 1, maxPerStation: 100, onError: (err) => { throw err; } });
    // 100 stations sending back to back: 20 frames each, interleaved.
    const stations = Array.from({ length: 100 }, (_, i) => `CP-${i}`);
    for (let n = 0; n < 20; n++) {
      for (const stationId of stations) {
        const e = frame(stationId, n);
        writer.append({ ...e, at: new Date(e.at) });
      }
    }
    await writer.flush();
    expect(written).toHaveLength(1);
    expect(written[0]!.map((c) => c.stationId)).toEqual(stations);
    for (const chunk of written[0]!) expect(readBack(chunk, chunk.entriesDeflated !== null)).toEqual(Array.from({ length: 20 }, (_, n) => frame(chunk.stationId, n)));
    // Nothing new, nothing written; the next flush holds only what came since.
    await writer.flush();
    expect(written).toHaveLength(1);
    const e = frame('CP-7', 40);
    writer.append({ ...e, at: new Date(e.at) });
    await writer.flush();
    expect(written[1]!.map((c) => readBack(c))).toEqual([[e]]);
  });
});

describe.each(testDatabases)('message log in the store (%s)', (kind) => {
  const stores = storePerTest(kind);
  const open = () => stores.open();

  /** Every entry of a station, newest first, read `limit` at a time with `before`. */
  async function pages(s: KyselyStore, stationId: string, limit: number, action?: string): Promise<MessageLogEntry[][]> {
    const out: MessageLogEntry[][] = [];
    let before: number | undefined;
    for (;;) {
      const page = await s.messageLog({ stationId, limit, before, action });
      if (page.length > 0) out.push(page);
      if (page.length < limit) return out;
      // A cursor that does not move back would page forever.
      if (before !== undefined && page.at(-1)!.id >= before) throw new Error(`page before ${before} ends at ${page.at(-1)!.id}`);
      if (out.length > 10_000) throw new Error('too many pages');
      before = page.at(-1)!.id;
    }
  }

  it('reads frames of interleaved stations back newest first, each station its own', async () => {
    const s = await open();
    const written: Record<string, NewEntry[]> = { A: [], B: [], C: [] };
    let n = 0;
    // Three writes, stations interleaved within each, C missing from the second.
    for (const stations of [['A', 'B', 'C'], ['B', 'A'], ['C', 'A', 'B']]) {
      const batch: NewEntry[] = [];
      for (let k = 0; k < 3; k++) {
        for (const id of stations) {
          const e = frame(id, n++, k === 1 ? 'Heartbeat' : 'MeterValues');
          batch.push(e);
          written[id]!.push(e);
        }
      }
      await s.appendMessageLog(batch);
    }
    for (const id of ['A', 'B', 'C']) {
      const log = await s.messageLog({ stationId: id, limit: 100 });
      expect(log.map(bare)).toEqual([...written[id]!].reverse());
      const ids = log.map((e) => e.id);
      expect(ids).toEqual([...ids].sort((x, y) => y - x));
      expect(new Set(ids).size).toBe(ids.length);
    }
    expect(await s.messageLog({ stationId: 'D', limit: 100 })).toEqual([]);
    expect((await s.messageLog({ stationId: 'A', limit: 2 })).map(bare)).toEqual(written.A!.slice(-2).reverse());
  });

  it('pages with `before` across chunks, from any id, including inside a chunk', async () => {
    const s = await open();
    const written: NewEntry[] = [];
    let n = 0;
    // Chunks of 5, 1, 7, 3 and 2 frames, another station's between them.
    for (const size of [5, 1, 7, 3, 2]) {
      const batch: NewEntry[] = [];
      for (let k = 0; k < size; k++) {
        const e = frame('A', n++);
        batch.push(e, frame('B', n));
        written.push(e);
      }
      await s.appendMessageLog(batch);
    }
    const newestFirst = [...written].reverse();
    const all = await s.messageLog({ stationId: 'A', limit: 1000 });
    expect(all.map(bare)).toEqual(newestFirst);
    for (const limit of [1, 2, 3, 4, 6, 18, 100]) {
      const got = await pages(s, 'A', limit);
      expect(got.flat()).toEqual(all);
      expect(got.slice(0, -1).every((p) => p.length === limit)).toBe(true);
    }
    // From every id (the middle of a chunk, its first, its last), and from one past the newest.
    for (let i = 0; i < all.length; i++) {
      expect(await s.messageLog({ stationId: 'A', before: all[i]!.id, limit: 4 })).toEqual(all.slice(i + 1, i + 5));
    }
    expect(await s.messageLog({ stationId: 'A', before: all[0]!.id + 1, limit: 3 })).toEqual(all.slice(0, 3));
    expect(await s.messageLog({ stationId: 'A', before: all.at(-1)!.id, limit: 3 })).toEqual([]);
    expect(await s.messageLog({ stationId: 'A', before: 0, limit: 3 })).toEqual([]);
  });

  it('filters by action across pages and chunks', async () => {
    const s = await open();
    const written: NewEntry[] = [];
    let n = 0;
    for (let write = 0; write < 40; write++) {
      const batch: NewEntry[] = [];
      for (let k = 0; k < 5; k++) batch.push(frame('A', n++, n % 7 === 0 ? 'StatusNotification' : 'MeterValues'));
      await s.appendMessageLog(batch);
      written.push(...batch);
    }
    const status = written.filter((e) => e.action === 'StatusNotification').reverse();
    expect(status.length).toBeGreaterThan(20);
    const got = await pages(s, 'A', 3, 'StatusNotification');
    expect(got.flat().map(bare)).toEqual(status);
    expect((await s.messageLog({ stationId: 'A', action: 'StatusNotification', limit: 1000 })).map(bare)).toEqual(status);
    expect(await s.messageLog({ stationId: 'A', action: 'Authorize', limit: 10 })).toEqual([]);
    // The old semantics: an empty action is no filter.
    expect(await s.messageLog({ stationId: 'A', action: '', limit: 1000 })).toHaveLength(written.length);
  });

  it('reads through many chunks of one frame (a quiet station, or frames moved by migration 0008)', async () => {
    const s = await open();
    const written: NewEntry[] = [];
    for (let n = 0; n < 300; n++) {
      const e = frame('A', n, n % 10 === 0 ? 'StatusNotification' : 'Heartbeat');
      await s.appendMessageLog([e]);
      written.push(e);
    }
    expect((await s.messageLog({ stationId: 'A', limit: 250 })).map(bare)).toEqual(written.slice(50).reverse());
    const status = written.filter((e) => e.action === 'StatusNotification').reverse();
    expect((await s.messageLog({ stationId: 'A', action: 'StatusNotification', limit: 1000 })).map(bare)).toEqual(status);
    expect((await pages(s, 'A', 7, 'StatusNotification')).flat().map(bare)).toEqual(status);
  });

  it('stores a write of more than a chunk of one station in order', async () => {
    const s = await open();
    const many = Array.from({ length: framesPerChunk + 10 }, (_, n) => frame('A', n));
    await s.appendMessageLog(many);
    const all = await s.messageLog({ stationId: 'A', limit: 2000 });
    expect(all.map(bare)).toEqual([...many].reverse());
    expect((await pages(s, 'A', 1000)).flat()).toEqual(all);
  });

  it('stores a chunk of many frames deflated and one of a few as text, and reads both back alike', async () => {
    const s = await open();
    const many = Array.from({ length: 300 }, (_, n) => frame('A', n));
    const few = [frame('A', 300), frame('A', 301)];
    await s.appendMessageLog(many);
    await s.appendMessageLog(few);
    const db = await stores.migratedTo('0010_message_log_deflated');
    const rows = await db.selectFrom('message_log_chunks').select(['frame_count', 'entries', 'entries_deflated']).orderBy('id').execute();
    await db.destroy();
    expect(rows.map((r) => [r.frame_count, r.entries === '', r.entries_deflated === null])).toEqual([
      [300, true, false],
      [2, false, true],
    ]);
    expect(rows[0]!.entries_deflated.length).toBeLessThan(inflateSync(rows[0]!.entries_deflated).length / 5);
    expect((await s.messageLog({ stationId: 'A', limit: 1000 })).map(bare)).toEqual([...many, ...few].reverse());
    expect((await pages(s, 'A', 7)).flat().map(bare)).toEqual([...many, ...few].reverse());
  });

  it('prunes whole chunks by age and by count per station, and says how many frames went', async () => {
    const s = await open();
    // A: chunks of frames at seconds 0-3, 4-7, 8-11, 12-15 (four frames each); B: one chunk at 100-104.
    for (let c = 0; c < 4; c++) await s.appendMessageLog(Array.from({ length: 4 }, (_, k) => frame('A', 4 * c + k)));
    await s.appendMessageLog(Array.from({ length: 5 }, (_, k) => frame('B', 100 + k)));
    // Older than second 6: only the first chunk is all older; the second (4-7) is partly older and stays.
    expect(await s.pruneMessageLog(at(6), 1000)).toBe(4);
    expect((await s.messageLog({ stationId: 'A', limit: 100 })).map((e) => e.at)).toEqual(Array.from({ length: 12 }, (_, i) => at(15 - i)));
    // Keep at least 5 frames per station: A keeps its two newest chunks (8 frames), B its only one.
    expect(await s.pruneMessageLog(at(0), 5)).toBe(4);
    expect((await s.messageLog({ stationId: 'A', limit: 100 })).map((e) => e.at)).toEqual(Array.from({ length: 8 }, (_, i) => at(15 - i)));
    expect(await s.messageLog({ stationId: 'B', limit: 100 })).toHaveLength(5);
    // Exactly a chunk's worth: A keeps only its newest chunk; B, at 5 frames, keeps all.
    expect(await s.pruneMessageLog(at(0), 4)).toBe(4);
    expect(await s.messageLog({ stationId: 'A', limit: 100 })).toHaveLength(4);
    expect(await s.pruneMessageLog(at(0), 4)).toBe(0);
    // Everything is older than this.
    expect(await s.pruneMessageLog(at(1000), 4)).toBe(9);
    expect(await s.messageLog({ stationId: 'B', limit: 100 })).toEqual([]);
    // Ids keep growing after a prune.
    await s.appendMessageLog([frame('A', 200)]);
    const [last] = await s.messageLog({ stationId: 'A', limit: 1 });
    expect(last!.id).toBeGreaterThan(5 * framesPerChunk);
  });

  it('migration 0008 moves frames stored one per row into chunks, in order and complete', async () => {
    const db = await stores.migratedTo('0007_meter_samples');
    const old: NewEntry[] = [];
    for (let n = 0; n < 6; n++) old.push(frame('A', n), frame('B', n));
    // What the gateway logs of a frame it could not parse.
    old.push({ stationId: 'A', at: at(9), direction: 'in', messageType: null, messageId: null, action: null, frame: 'not json [' });
    for (const e of old) {
      await db
        .insertInto('message_log')
        .values({ station_id: e.stationId, at: e.at, direction: e.direction, message_type: e.messageType, message_id: e.messageId, action: e.action, frame: e.frame })
        .execute();
    }
    const oldIds = (await db.selectFrom('message_log').select(['id', 'station_id']).orderBy('id').execute()).filter((r) => r.station_id === 'A').map((r) => Number(r.id));
    await db.destroy();

    const store = await stores.open();
    const a = await store.messageLog({ stationId: 'A', limit: 100 });
    expect(a.map(bare)).toEqual(old.filter((e) => e.stationId === 'A').reverse());
    expect(a.map((e) => e.id)).toEqual(oldIds.map((id) => id * framesPerChunk).reverse());
    expect((await store.messageLog({ stationId: 'B', limit: 100 })).map(bare)).toEqual(old.filter((e) => e.stationId === 'B').reverse());
    expect((await pages(store, 'A', 2)).flat()).toEqual(a);
    // New chunks come after the moved ones (PostgreSQL's sequence was moved past them).
    await store.appendMessageLog([frame('A', 50), frame('A', 51)]);
    const newest = await store.messageLog({ stationId: 'A', limit: 3 });
    expect(newest.map(bare)).toEqual([frame('A', 51), frame('A', 50), old.at(-1)!]);
    expect(newest[1]!.id).toBeGreaterThan(a[0]!.id);
    expect(await store.pruneMessageLog(at(1000), 1)).toBe(old.length + 2);
  });
});
