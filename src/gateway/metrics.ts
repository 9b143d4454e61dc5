import { readdir } from 'node:fs/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/**
 * prom-client's default metrics that walk every open handle on the event loop when scraped. With
 * 10,000 stations connected one scrape held the loop 20-50 ms, and every station's answer with it:
 * `process_open_fds` reads /proc/self/fd synchronously (9 ms for 10,000 sockets), the
 * `nodejs_active_*` ones list every handle, and the per-type ones group them (4-12 ms each).
 * `process_open_fds` is counted again below, off the event loop; the handle counts are left out,
 * `ampyard_connected_stations` says what they mostly counted.
 */
const defaultMetricsLeftOut = ['process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total'];

/**
 * A histogram with one label, written as prom-client writes its own (cumulative `_bucket` lines with
 * `le`, then `_sum` and `_count`), for observations on the path of every message: an observation is
 * a lookup by the label's value and a scan of the bounds, and nothing is allocated for it.
 */
export class LabelledHistogram {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private series = new Map<string, { counts: number[]; sum: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly upperBounds: readonly number[],
  ) {}

  observe(labelValue: string, value: number): void {
    let series = this.series.get(labelValue);
    if (!series) {
      series = { counts: new Array<number>(this.upperBounds.length + 1).fill(0), sum: 0 };
      this.series.set(labelValue, series);
    }
    let bucket = 0;
    while (bucket < this.upperBounds.length && value > this.upperBounds[bucket]!) bucket += 1;
    series.counts[bucket]! += 1;
    series.sum += value;
  }

  /** Starts timing; the function returned observes the seconds since, under `labelValue`. */
  startTimer(labelValue: string): () => void {
    const started = performance.now();
    return () => this.observe(labelValue, (performance.now() - started) / 1000);
  }

  /** What prom-client's registry asks a metric for when it is scraped. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> }> {
    const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
    for (const [labelValue, series] of this.series) {
      let cumulative = 0;
      for (let i = 0; i <= this.upperBounds.length; i++) {
        cumulative += series.counts[i]!;
        const le = i < this.upperBounds.length ? this.upperBounds[i]! : '+Inf';
        values.push({ metricName: `${this.name}_bucket`, labels: { le, [this.labelName]: labelValue }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_sum`, labels: { [this.labelName]: labelValue }, value: series.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.labelName]: labelValue }, value: cumulative });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series = new Map();
  }
}

/** Prometheus metrics of one CSMS instance (its own registry, so tests can run several). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of defaultMetricsLeftOut) registry.removeSingleMetric(name);
  if (process.platform === 'linux') {
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors.',
      registers: [registry],
      async collect() {
        try {
          // Listed on libuv's thread pool; the directory's own descriptor was open while it was read.
          this.set((await readdir('/proc/self/fd')).length - 1);
        } catch {
          // No /proc: the gauge keeps its last value.
        }
      },
    });
  }
  const handleLatency = new LabelledHistogram(
    'ampyard_ocpp_handle_duration_seconds',
    'Time to handle a station CALL, including the commit, until we answer',
    'action',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
  );
  // prom-client's registry only calls get() and reset() of a metric; its Metric type asks for more.
  registry.registerMetric(handleLatency as unknown as Metric);
  // Frames are counted here and handed to prom-client when it is scraped: its inc() hashes the
  // labels on every call, twice per MeterValues (in and out), about 2 % of a saturated server's CPU.
  // Kept by action, then by direction and type, so that a count is found by strings the frame already
  // has rather than by a key made for it (a new string, hashed, for every frame).
  const frameCounts = new Map<string, Array<{ labels: { action: string; direction: string; type: string }; count: number }>>();
  return {
    registry,
    /** Counts one OCPP frame (ampyard_ocpp_messages_total). */
    countFrame(action: string, direction: string, type: string): void {
      let ofAction = frameCounts.get(action);
      if (!ofAction) frameCounts.set(action, (ofAction = []));
      // An action has a few kinds of frame: its CALL in, its answer out, perhaps an error.
      for (const counted of ofAction) {
        if (counted.labels.direction === direction && counted.labels.type === type) {
          counted.count += 1;
          return;
        }
      }
      ofAction.push({ labels: { action, direction, type }, count: 1 });
    },
    connectedStations: new Gauge({ name: 'ampyard_connected_stations', help: 'OCPP stations connected to this node', registers: [registry] }),
    messages: new Counter({
      name: 'ampyard_ocpp_messages_total',
      help: 'OCPP frames by action, direction and message type',
      labelNames: ['action', 'direction', 'type'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const ofAction of frameCounts.values()) for (const { labels, count } of ofAction) this.inc(labels, count);
      },
    }),
    callLatency: new Histogram({
      name: 'ampyard_ocpp_call_duration_seconds',
      help: 'Time from our CALL to the station until its answer',
      labelNames: ['action', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    /**
     * Time to handle a station CALL, including the commit, until we answer
     * (ampyard_ocpp_handle_duration_seconds). Counted here like the frames: prom-client's
     * Histogram copies, checks and hashes the labels on every observation, about 1 % of a saturated
     * server's CPU.
     */
    handleLatency,
    errors: new Counter({ name: 'ampyard_ocpp_errors_total', help: 'CALLERRORs by direction and code', labelNames: ['direction', 'code'] as const, registers: [registry] }),
    rejectedUpgrades: new Counter({ name: 'ampyard_rejected_upgrades_total', help: 'WebSocket upgrades refused, by HTTP status', labelNames: ['status'] as const, registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
