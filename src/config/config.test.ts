import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'ampyard-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('configuration', () => {
  it('defaults to port 8080, an embedded SQLite file and the pending registration policy', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 8080, db: 'sqlite:./data/ampyard.db', registration: 'pending' });
  });

  it('layers file < environment < flags', () => {
    const path = file('a.yaml', 'port: 9000\nregistration: closed\nheartbeatIntervalS: 120\n');
    const c = loadConfig({ file: path, env: { PORT: '9100', DATABASE_URL: 'postgres://u@h/db' }, flags: { port: 9200 } });
    expect(c).toMatchObject({ port: 9200, registration: 'closed', heartbeatIntervalS: 120, db: 'postgres://u@h/db' });
  });

  it('names the bad key in the error', () => {
    expect(() => loadConfig({ env: { PORT: 'eighty' } })).toThrow(/port: Expected integer/);
    expect(() => loadConfig({ file: file('b.json', '{"rateLimit": {"perSecond": -1}}') })).toThrow(/rateLimit\.perSecond/);
    expect(() => loadConfig({ file: file('c.yaml', 'prot: 80\n') })).toThrow(/prot: Unexpected property/);
    expect(() => loadConfig({ flags: { registration: 'sometimes' } })).toThrow(/registration/);
    expect(() => loadConfig({ flags: { db: 'mysql://x' } })).toThrow(/db:/);
  });

  it('reports a file that cannot be read or parsed', () => {
    expect(() => loadConfig({ file: join(dir, 'missing.yaml') })).toThrow(ConfigError);
    expect(() => loadConfig({ file: file('d.json', '{ not json') })).toThrow(/not valid JSON/);
  });

  it('takes the TLS listener from the environment', () => {
    const c = loadConfig({ env: { AMPYARD_TLS_PORT: '8443', AMPYARD_TLS_CERT_FILE: '/c.pem', AMPYARD_TLS_KEY_FILE: '/k.pem' } });
    expect(c.tls).toEqual({ port: 8443, certFile: '/c.pem', keyFile: '/k.pem' });
  });

  it('takes an API port of its own, and refuses one that collides with another port', () => {
    expect(loadConfig({ env: { AMPYARD_API_PORT: '9090' } })).toMatchObject({ port: 8080, apiPort: 9090 });
    expect(loadConfig({}).apiPort).toBeUndefined();
    expect(() => loadConfig({ flags: { apiPort: 8080 } })).toThrow(/apiPort: must differ from port \(both 8080\)/);
    expect(() => loadConfig({ env: { AMPYARD_TLS_PORT: '9090', AMPYARD_TLS_CERT_FILE: '/c.pem', AMPYARD_TLS_KEY_FILE: '/k.pem' }, flags: { apiPort: 9090 } })).toThrow(
      /tls\.port: must differ from apiPort/,
    );
    // Port 0 picks a free port each time: never a collision.
    expect(loadConfig({ flags: { port: 0, apiPort: 0 } })).toMatchObject({ port: 0, apiPort: 0 });
  });

  it('refuses a balancer renewal margin that cannot reach a station in time', () => {
    // Defaults: 60 s covers 2 × 10 s of clock skew and a 30 s call timeout.
    expect(loadConfig({}).smartCharging.balancer).toMatchObject({ renewBeforeS: 60, clockSkewS: 10, txProfileValidityS: 300 });
    expect(() => loadConfig({ flags: { 'smartCharging.balancer.clockSkewS': 20 } })).toThrow(/renewBeforeS: must be at least 2 × clockSkewS \+ callTimeoutMs, 70 s \(got 60\)/);
    expect(() => loadConfig({ flags: { callTimeoutMs: 45000 } })).toThrow(/renewBeforeS: must be at least .*, 65 s/);
    expect(() => loadConfig({ flags: { 'smartCharging.balancer.renewBeforeS': 300 } })).toThrow(/renewBeforeS: must be less than txProfileValidityS \(300 >= 300\)/);
    expect(loadConfig({ flags: { 'smartCharging.balancer.clockSkewS': 20, 'smartCharging.balancer.renewBeforeS': 70 } }).smartCharging.balancer.renewBeforeS).toBe(70);
  });
});
