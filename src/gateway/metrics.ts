import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one CSMS instance (its own registry, so tests can run several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Frames are counted here and handed to prom-client when it is scraped: its inc() hashes the
  // labels on every call, twice per MeterValues (in and out), about 2 % of a saturated server's CPU.
  const frameCounts = new Map<string, { labels: { action: string; direction: string; type: string }; count: number }>();
  return {
    registry,
    /** Counts one OCPP frame (ampyard_ocpp_messages_total). */
    countFrame(action: string, direction: string, type: string): void {
      const key = `${action}\u0000${direction}\u0000${type}`;
      const counted = frameCounts.get(key);
      if (counted) counted.count += 1;
      else frameCounts.set(key, { labels: { action, direction, type }, count: 1 });
    },
    connectedStations: new Gauge({ name: 'ampyard_connected_stations', help: 'OCPP stations connected to this node', registers: [registry] }),
    messages: new Counter({
      name: 'ampyard_ocpp_messages_total',
      help: 'OCPP frames by action, direction and message type',
      labelNames: ['action', 'direction', 'type'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, count } of frameCounts.values()) this.inc(labels, count);
      },
    }),
    callLatency: new Histogram({
      name: 'ampyard_ocpp_call_duration_seconds',
      help: 'Time from our CALL to the station until its answer',
      labelNames: ['action', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    handleLatency: new Histogram({
      name: 'ampyard_ocpp_handle_duration_seconds',
      help: 'Time to handle a station CALL, including the commit, until we answer',
      labelNames: ['action'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    errors: new Counter({ name: 'ampyard_ocpp_errors_total', help: 'CALLERRORs by direction and code', labelNames: ['direction', 'code'] as const, registers: [registry] }),
    rejectedUpgrades: new Counter({ name: 'ampyard_rejected_upgrades_total', help: 'WebSocket upgrades refused, by HTTP status', labelNames: ['status'] as const, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
