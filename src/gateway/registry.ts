import type { OcppConnection } from '../ocpp/connection.js';

/**
 * Who holds which station's socket. On one node it is this map; in a cluster the command router
 * asks NATS for the node that holds the station, behind the same CommandSender interface.
 */
export class ConnectionRegistry {
  private readonly connections = new Map<string, OcppConnection>();

  get(stationId: string): OcppConnection | undefined {
    return this.connections.get(stationId);
  }

  /** Registers a connection and returns the one it replaces, if any. */
  set(connection: OcppConnection): OcppConnection | undefined {
    const previous = this.connections.get(connection.stationId);
    this.connections.set(connection.stationId, connection);
    return previous;
  }

  /** Removes the connection only if it is still the registered one (a replaced socket closing late must not evict its successor). */
  delete(connection: OcppConnection): boolean {
    if (this.connections.get(connection.stationId) !== connection) return false;
    this.connections.delete(connection.stationId);
    return true;
  }

  isConnected(stationId: string): boolean {
    return this.connections.has(stationId);
  }

  get size(): number {
    return this.connections.size;
  }

  all(): OcppConnection[] {
    return [...this.connections.values()];
  }
}
