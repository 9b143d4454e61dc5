import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { RPCClient } from 'ocpp-rpc';
import { createCsms, type Csms } from '../../src/app.js';
import { loadConfig, plannerDefaults, type Config } from '../../src/config/config.js';
import type { Clock } from '../../src/domain/ports.js';

/** The databases every storage test runs against: SQLite always, PostgreSQL when AMPYARD_TEST_POSTGRES_URL is set. */
export const testDatabases: Array<'sqlite' | 'postgres'> = process.env.AMPYARD_TEST_POSTGRES_URL ? ['sqlite', 'postgres'] : ['sqlite'];

if (!process.env.AMPYARD_TEST_POSTGRES_URL && !(globalThis as any).__ampyardPgNoticeShown) {
  (globalThis as any).__ampyardPgNoticeShown = true;
  console.info('PostgreSQL variants skipped: set AMPYARD_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run them');
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database of the given kind: a temp SQLite file, or a new PostgreSQL database. */
export async function freshDatabase(kind: 'sqlite' | 'postgres'): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'ampyard-test-'));
    return { url: `sqlite:${join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const admin = new URL(process.env.AMPYARD_TEST_POSTGRES_URL!);
  const name = `ampyard_t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: admin.toString() });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface TestCsms {
  csms: Csms;
  httpUrl: string;
  ocppUrl: string;
  ocppTlsUrl?: string;
  /** fetch against the REST API; JSON in and out. */
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  stop(): Promise<void>;
}

/** Fast rounds and no per-profile check, so that a test sees the balancer and the planner act within a second. */
export const quickSmartCharging = {
  supplyVoltage: 230,
  verifyProfiles: false,
  verifyDurationS: 3600,
  balancer: { enabled: true, txProfileValidityS: 300, renewBeforeS: 60, clockSkewS: 5, minUpdateIntervalS: 0, debounceMs: 20, housekeepingMs: 100, failsafeHorizonS: 3600, failsafeFraction: 0.5 },
  planner: plannerDefaults(),
};

/** Starts a real CSMS on 127.0.0.1 with a random port and a fresh database. */
export async function startCsms(overrides: Partial<Config> & { database?: 'sqlite' | 'postgres'; clock?: Clock } = {}): Promise<TestCsms> {
  const { database = 'sqlite', clock, ...rest } = overrides;
  const db = await freshDatabase(database);
  const config = { ...loadConfig({ flags: { host: '127.0.0.1', port: 0, db: db.url, registration: 'open', logLevel: 'silent' } }), ...rest };
  const csms = await createCsms(config, { logger: pino({ level: config.logLevel }), clock });
  const urls = await csms.start();
  return {
    csms,
    ...urls,
    async api(method, path, body) {
      const res = await fetch(`${urls.httpUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: any = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.status, body: parsed };
    },
    async stop() {
      await csms.stop();
      await db.drop();
    },
  };
}

/** ocpp-rpc's client with `call` typed loosely: tests read the answers as the OCPP payloads they are. */
export type OcppTestClient = Omit<RPCClient, 'call'> & { call(method: string, params?: unknown, options?: Record<string, unknown>): Promise<any> };

/** An independent OCPP 1.6J client (ocpp-rpc), strict: it validates what we send it. */
export async function connectStation(
  ocppUrl: string,
  identity: string,
  opts: { password?: string; handlers?: Record<string, (payload: any) => unknown>; connect?: boolean; callTimeoutMs?: number } = {},
): Promise<OcppTestClient> {
  const client = new RPCClient({
    endpoint: ocppUrl,
    identity,
    protocols: ['ocpp1.6'],
    strictMode: true,
    password: opts.password,
    reconnect: false,
    callTimeoutMs: opts.callTimeoutMs ?? 5000,
  } as any);
  for (const [action, handler] of Object.entries(opts.handlers ?? {})) {
    client.handle(action, (({ params }: { params: any }) => handler(params)) as any);
  }
  if (opts.connect !== false) await client.connect();
  return client as unknown as OcppTestClient;
}

/** Boots a station and reports its connectors Available, as a charger does after power-up. */
export async function bootStation(client: OcppTestClient, connectors = 1): Promise<any> {
  const boot = await client.call('BootNotification', { chargePointVendor: 'Ampyard', chargePointModel: 'TestBox', chargePointSerialNumber: 'SN-1', firmwareVersion: '1.0.0' });
  for (let c = 0; c <= connectors; c++) {
    await client.call('StatusNotification', { connectorId: c, status: 'Available', errorCode: 'NoError', timestamp: new Date().toISOString() });
  }
  return boot;
}

/** Waits until `check` returns a truthy value or the time runs out. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 3000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
