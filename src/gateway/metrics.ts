import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one CSMS instance (its own registry, so tests can run several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    connectedStations: new Gauge({ name: 'ampyard_connected_stations', help: 'OCPP stations connected to this node', registers: [registry] }),
    messages: new Counter({
      name: 'ampyard_ocpp_messages_total',
      help: 'OCPP frames by action, direction and message type',
      labelNames: ['action', 'direction', 'type'] as const,
      registers: [registry],
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
