import type { Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import { TLSSocket, type SecureContext } from 'node:tls';
import { PacedListener } from './paced-listener.js';

/**
 * The TLS port: a paced listener (paced-listener.ts) whose first step is the TLS handshake, done
 * here rather than by a `tls.Server`; each connection goes to the HTTP server once it is secure.
 *
 * Why: a server-side handshake is about a millisecond of CPU in two steps (the ClientHello: a key
 * and a signature; the client's key exchange: the shared secret), both run natively in the socket's
 * read callback. When 10,000 stations come back at once the kernel has thousands of them ready,
 * libuv runs them all in one poll phase, and `/healthz` waited 300 ms and more behind them. With
 * at most `concurrency` handshakes between their first byte and their end, a poll phase holds at
 * most that many steps.
 *
 * A handshake that outlasts its place (`placeMs`) goes on without one until `handshakeTimeoutMs`,
 * then is closed.
 */
export class PacedTlsListener extends PacedListener {
  constructor(
    http: HttpServer,
    private readonly tlsOptions: { secureContext: SecureContext; concurrency: number; placeMs: number; acceptsPerTurn?: number; handshakeTimeoutMs: number },
  ) {
    super(http, tlsOptions);
  }

  /** Handshakes holding a place now. */
  get handshakesInProgress(): number {
    return this.inFirstStep;
  }

  protected firstStep(socket: Socket, done: () => void): void {
    const tls = new TLSSocket(socket, { isServer: true, secureContext: this.tlsOptions.secureContext, requestCert: false, rejectUnauthorized: false });
    const giveUpTimer = setTimeout(() => tls.destroy(), this.tlsOptions.handshakeTimeoutMs);
    const onError = () => {
      end();
      tls.destroy();
    };
    const end = () => {
      clearTimeout(giveUpTimer);
      // Nothing of the handshake stays attached to a connection that lives on.
      tls.off('close', end);
      tls.off('error', onError);
      done();
    };
    tls.once('secure', () => {
      end();
      // The documented way to give an HTTP server a connection it did not accept itself (which
      // handles its errors from here on).
      this.http.emit('connection', tls);
    });
    tls.once('error', onError);
    tls.once('close', end);
  }
}
