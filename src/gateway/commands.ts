import { completeCommand, recordCommandOutcome } from '../adapters/v16/outgoing.js';
import type { V16Services } from '../adapters/v16/incoming.js';
import { OcppError, OcppRequestInvalidError } from '../ocpp/errors.js';
import { schemaValidator } from '../ocpp/schemas.js';
import type { CommandSender } from '../domain/ports.js';
import type { ConnectionRegistry } from './registry.js';
import type { Metrics } from './metrics.js';

export class StationNotConnectedError extends Error {
  constructor(public readonly stationId: string) {
    super(`station ${stationId} is not connected`);
    this.name = 'StationNotConnectedError';
  }
}

export type { CommandSender } from '../domain/ports.js';

/** Commands to stations whose sockets this node holds. */
export class LocalCommandSender implements CommandSender {
  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly services: V16Services,
    private readonly metrics: Metrics,
  ) {}

  isConnected(stationId: string): boolean {
    return this.registry.isConnected(stationId);
  }

  async send(stationId: string, action: string, payload: unknown, opts: { timeoutMs?: number; source?: string } = {}): Promise<any> {
    const request = await completeCommand(this.services, stationId, action, payload);
    // A request that breaks the schema is the caller's error whether or not the station is connected.
    try {
      schemaValidator('ocpp1.6').validate(action, 'req', request);
    } catch (err) {
      if (err instanceof OcppError) throw new OcppRequestInvalidError(action, err);
      throw err;
    }
    const connection = this.registry.get(stationId);
    if (!connection) throw new StationNotConnectedError(stationId);
    const end = this.metrics.callLatency.startTimer({ action });
    try {
      const response = await connection.call(action, request, opts.timeoutMs);
      end({ outcome: 'result' });
      await recordCommandOutcome(this.services, stationId, action, request, response, opts.source ?? 'api');
      return response;
    } catch (err) {
      end({ outcome: (err as Error).name });
      throw err;
    }
  }
}
