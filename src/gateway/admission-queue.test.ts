import { describe, expect, it } from 'vitest';
import { AdmissionQueue } from './admission-queue.js';

/** Resolves once the queue has nothing left to run (polled on later turns of the event loop). */
async function settled(queue: AdmissionQueue): Promise<void> {
  while (queue.size > 0) await new Promise((r) => setImmediate(r));
}

describe('AdmissionQueue', () => {
  it('starts nothing inside push, then runs the jobs in the order they came', async () => {
    const queue = new AdmissionQueue(4);
    const started: number[] = [];
    for (let i = 0; i < 10; i++) queue.push(async () => void started.push(i));
    expect(started).toEqual([]);
    expect(queue.size).toBe(10);
    await settled(queue);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('never runs more than its concurrency at once', async () => {
    const queue = new AdmissionQueue(3);
    let running = 0;
    let most = 0;
    for (let i = 0; i < 20; i++) {
      queue.push(async () => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 1 + (i % 3)));
        running -= 1;
      });
    }
    await settled(queue);
    expect(most).toBe(3);
  });

  it('lets the event loop turn between a finished job and the next, even when jobs finish in microtasks', async () => {
    const queue = new AdmissionQueue(1);
    // A turn counter advanced by its own chain of immediates, as other I/O would be served.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn += 1;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const turns: number[] = [];
    for (let i = 0; i < 5; i++) queue.push(async () => void turns.push(turn));
    await settled(queue);
    ticking = false;
    for (let i = 1; i < turns.length; i++) expect(turns[i]!).toBeGreaterThan(turns[i - 1]!);
  });

  it('goes on after a job that fails', async () => {
    const queue = new AdmissionQueue(1);
    const done: string[] = [];
    queue.push(async () => {
      throw new Error('lookup failed');
    });
    queue.push(async () => void done.push('next'));
    await settled(queue);
    expect(done).toEqual(['next']);
  });

  it('refuses a concurrency below one', () => {
    expect(() => new AdmissionQueue(0)).toThrow(/at least 1/);
  });
});
