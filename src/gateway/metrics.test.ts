import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

describe('metrics', () => {
  it('writes the handling histogram as Prometheus buckets, cumulative, with sum and count per action', async () => {
    const metrics = createMetrics();
    metrics.handleLatency.observe('MeterValues', 0.0003);
    metrics.handleLatency.observe('MeterValues', 0.002);
    metrics.handleLatency.observe('MeterValues', 0.002);
    metrics.handleLatency.observe('MeterValues', 3);
    metrics.handleLatency.observe('Heartbeat', 0.001);
    const text = await metrics.registry.metrics();
    const line = (labels: string) => new RegExp(`^ampyard_ocpp_handle_duration_seconds_bucket\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1];
    expect(text).toMatch(/^# TYPE ampyard_ocpp_handle_duration_seconds histogram$/m);
    expect(line('le="0.0005",action="MeterValues"')).toBe('1');
    expect(line('le="0.001",action="MeterValues"')).toBe('1');
    expect(line('le="0.0025",action="MeterValues"')).toBe('3');
    expect(line('le="1",action="MeterValues"')).toBe('3');
    expect(line('le="\\+Inf",action="MeterValues"')).toBe('4');
    // A value on a bound counts in that bound's bucket (le: less than or equal).
    expect(line('le="0.0005",action="Heartbeat"')).toBe('0');
    expect(line('le="0.001",action="Heartbeat"')).toBe('1');
    expect(text).toMatch(/^ampyard_ocpp_handle_duration_seconds_count\{action="MeterValues"\} 4$/m);
    expect(Number(/^ampyard_ocpp_handle_duration_seconds_sum\{action="MeterValues"\} (\S+)$/m.exec(text)?.[1])).toBeCloseTo(3.0043, 9);
    expect(text).toMatch(/^ampyard_ocpp_handle_duration_seconds_count\{action="Heartbeat"\} 1$/m);
  });

  it('times a handling from startTimer to the call it returns', async () => {
    const metrics = createMetrics();
    const end = metrics.handleLatency.startTimer('Authorize');
    await new Promise((resolve) => setTimeout(resolve, 20));
    end();
    const text = await metrics.registry.metrics();
    const seconds = Number(/^ampyard_ocpp_handle_duration_seconds_sum\{action="Authorize"\} (\S+)$/m.exec(text)?.[1]);
    expect(seconds).toBeGreaterThanOrEqual(0.015);
    expect(seconds).toBeLessThan(5);
    expect(text).toMatch(/^ampyard_ocpp_handle_duration_seconds_bucket\{le="0.01",action="Authorize"\} 0$/m);
  });

  it.runIf(process.platform === 'linux')('counts open file descriptors, and leaves out the default metrics that list every handle', async () => {
    const metrics = createMetrics();
    const openFds = async () => Number(/^process_open_fds (\d+)$/m.exec(await metrics.registry.metrics())?.[1]);
    const before = await openFds();
    const opened = Array.from({ length: 100 }, () => openSync('/dev/null', 'r'));
    try {
      expect(await openFds()).toBe(before + 100);
    } finally {
      for (const fd of opened) closeSync(fd);
    }
    expect(await openFds()).toBe(before);
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/^nodejs_active_(handles|resources)/m);
    // The rest of prom-client's defaults stay.
    expect(text).toMatch(/^process_max_fds \d+$/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
  });
});
