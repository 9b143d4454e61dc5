import { spawn } from 'node:child_process';
import type { Server as NetServer } from 'node:net';

/**
 * More descriptors for one listening socket, so that the event loop accepts more than one new
 * connection per turn.
 *
 * Why: libuv (1.46, Node 20) accepts one connection per listening handle per turn of the event
 * loop. When 10,000 chargers register at once each turn also does real work (their upgrades, boots
 * and commits, about 0.6 ms a turn), so the kernel's accept queue held 2,000 to 3,000 connections
 * for seconds, and a `/healthz` on a new connection waited behind all of them (1.3 to 8.6 s in 14
 * of 40 storms, docs/benchmarks.md session 12). A second handle on a duplicate of the listening
 * descriptor is polled in the same turn and accepts one more: with `n` of them a turn accepts up to
 * `n`, and what waits, waits in the paced listener's own queue, where `/healthz` goes first.
 *
 * Node 20 has no call that duplicates a descriptor. Passing a handle over an IPC channel does
 * (SCM_RIGHTS): the handle goes to a short-lived helper process, which sends it straight back, and
 * what comes back is a new descriptor for the same socket. The raw handle (`server._handle`, which
 * Node's `send` passes as it is) travels rather than the `net.Server`, which the helper would start
 * listening on, accepting connections it would then drop. Node 22.12 and later have `reusePort`
 * for the same purpose. Linux's epoll reports each descriptor on its own; the copies are made
 * once, at start, and closed with the listener.
 */
export async function listeningCopies(server: NetServer, count: number, timeoutMs = 10_000): Promise<unknown[]> {
  if (count < 1) return [];
  const handle = (server as unknown as { _handle?: unknown })._handle;
  if (!handle) throw new Error('the server is not listening');
  const helper = spawn(process.execPath, ['-e', HELPER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: {} });
  // Failures reach the promise below (a send's own callback, 'exit'); this keeps a late one from being thrown.
  helper.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => helper.once('exit', () => resolve()));
  // Until it has exited the helper holds descriptors of the socket too, which keep the port listening.
  const stopHelper = async () => {
    if (helper.pid === undefined || helper.exitCode !== null || helper.signalCode !== null) return;
    helper.kill('SIGKILL');
    await exited;
  };
  const copies: unknown[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`no copies of the listening socket after ${timeoutMs} ms`)), timeoutMs);
      helper.once('error', fail);
      void exited.then(() => fail(new Error(`the helper that copies the listening socket exited with ${copies.length} of ${count} copies`)));
      helper.on('message', (_message, copy) => {
        if (!copy) return;
        copies.push(copy);
        if (copies.length === count) {
          clearTimeout(timer);
          resolve();
        }
      });
      // A send fails when the socket was closed meanwhile (the listener closed during its start).
      for (let i = 0; i < count; i += 1) helper.send('copy', handle as never, undefined, (err) => err && fail(err));
    });
  } catch (err) {
    await stopHelper();
    for (const copy of copies) (copy as { close?: () => void }).close?.();
    throw err;
  }
  await stopHelper();
  return copies;
}

// Sends every handle it is given back to its parent; it never listens on them.
const HELPER = `
process.on('message', (message, handle) => {
  if (handle) process.send('copy', handle);
});
process.on('disconnect', () => process.exit(0));
`;
