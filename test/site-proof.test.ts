import { afterEach, describe, expect, it } from 'vitest';
import { plannerDefaults } from '../src/config/config.js';
import { limitOfNodeAt } from '../src/charging/site/model.js';
import { Fleet, SpeedClock } from '../src/simulator/fleet.js';
import { loadTemplate } from '../src/simulator/templates.js';
import { startCsms, type TestCsms } from './helpers/csms.js';

const speed = 600;
const hour = 3600_000;

/**
 * The proof of issue 4 on the simulator: 20 DC depot chargers under a 1 MW grid connection, 8 of
 * them behind a 300 kW cabinet, buses arriving in the evening, a curtailment to 600 kW from 20:00
 * to 21:00 announced in advance, and three stations that lose their connection mid-session. The
 * load is read every simulated second from the simulated chargers themselves.
 */
describe('a bus depot under its limits, on the simulator', () => {
  let server: TestCsms;
  let fleet: Fleet;
  afterEach(async () => {
    fleet?.stop();
    await server?.stop();
  });

  it('never exceeds the grid connection, the cabinet or the curtailment; buses get what they are granted; offline stations stay inside', async () => {
    const day = new Date();
    const start = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 17, 55));
    const at = (h: number, m = 0) => new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m));
    // The CSMS and the simulated chargers share one simulated clock.
    const clock = new SpeedClock(start, speed);
    server = await startCsms({
      clock,
      rateLimit: { perSecond: 1000, burst: 1000 },
      smartCharging: {
        supplyVoltage: 230,
        verifyProfiles: false,
        verifyDurationS: 3600,
        // Simulated seconds for profile validity; real milliseconds for the CSMS's own timers.
        balancer: { enabled: true, txProfileValidityS: 1200, renewBeforeS: 400, clockSkewS: 30, minUpdateIntervalS: 0, debounceMs: 10, housekeepingMs: 50, failsafeHorizonS: 86400, failsafeFraction: 0.5 },
        planner: plannerDefaults(),
      },
    });
    fleet = new Fleet({
      csmsUrl: server.ocppUrl,
      stations: 20,
      prefix: 'BUS-',
      template: loadTemplate('dc-150kw-depot'),
      scenario: 'depot',
      durationS: 4 * 3600,
      seed: 11,
      speed,
      start,
      clock,
      tickMs: 20,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
    });
    for (const idTag of fleet.idTags()) await server.csms.store.upsertIdTag({ idTag, status: 'Accepted', expiryDate: null, parentIdTag: null });

    const cabinet = fleet.stations.slice(0, 8).map((s) => s.id);
    const direct = fleet.stations.slice(8).map((s) => ({ id: s.id, kind: 'DC', maxPowerW: 150000 }));
    const put = await server.api('PUT', '/api/v1/sites/depot', {
      name: 'Bus depot',
      limit: { value: 1_000_000, unit: 'W' },
      groups: [{ id: 'cabinet', limit: { value: 300_000, unit: 'W' }, stations: cabinet.map((id) => ({ id, kind: 'DC', maxPowerW: 150000 })) }],
      stations: direct,
    });
    expect(put.status).toBe(201);
    await server.api('PUT', '/api/v1/sites/depot/external-limit', { periods: [{ from: at(20).toISOString(), to: at(21).toISOString(), value: 600_000, unit: 'W' }] });
    const site = (await server.csms.balancer.siteState('depot'))!.site;

    const cut: Fleet['stations'] = [];
    let worstSiteOver = -Infinity;
    let worstCabinetOver = -Infinity;
    let samples = 0;
    let obeyed = 0;
    let shortOfGrant = 0;
    const peak = { site: 0, cabinet: 0, curtailed: 0 };
    let offlineCharging = 0;
    let unequalShares = 0;
    let cabinetFullInstants = 0;
    // The first second over a limit, as the stations saw it: a failure in CI says what to look for.
    let firstOver: string | undefined;
    const snapshot = (now: Date, siteW: number, cabinetW: number) =>
      JSON.stringify({
        at: now.toISOString(),
        siteW,
        siteLimitW: limitOfNodeAt(site, now).maxW,
        cabinetW,
        stations: fleet.stations
          .filter((s) => s.connectors.some((c) => c.powerW > 0 || c.transaction))
          .map((s) => ({
            id: s.id,
            online: s.online,
            connectors: s.connectors.map((c) => ({ id: c.connectorId, transaction: c.transaction?.id, powerW: c.powerW, limit: c.limit })),
            profiles: s.profiles.map(({ connectorId, profile: p }) => ({
              connectorId,
              id: p.chargingProfileId,
              purpose: p.chargingProfilePurpose,
              stackLevel: p.stackLevel,
              validTo: p.validTo,
              start: p.chargingSchedule.startSchedule,
              periods: p.chargingSchedule.chargingSchedulePeriod.map((q) => [q.startPeriod, q.limit]),
            })),
          })),
      });
    fleet.onSecond = (now) => {
      let siteW = 0;
      let cabinetW = 0;
      for (const s of fleet.stations) {
        for (const c of s.connectors) {
          siteW += c.powerW;
          if (cabinet.includes(s.id)) cabinetW += c.powerW;
          if (!c.transaction || !c.vehicle) continue;
          // Every bus draws no more than its station's profiles allow, and takes all of it when it can.
          const allowed = c.limit?.value ?? Infinity;
          if (c.powerW <= allowed + 1) obeyed += 1;
          const accepts = c.vehicle.acceptedPowerW({ kind: 'DC', voltageV: 230, stationPhases: 3, maxPowerW: 150000 });
          if (c.powerW < Math.min(allowed, accepts, 150000) - 1) shortOfGrant += 1;
        }
      }
      samples += 1;
      if (now >= at(20) && now < at(21)) peak.curtailed = Math.max(peak.curtailed, siteW);
      for (const s of cut) if (!s.online) for (const c of s.connectors) if (c.powerW > 0) offlineCharging += 1;
      if (cabinetW >= 299_000) {
        // The cabinet is full: the buses behind it that could take more share it equally (equal share).
        cabinetFullInstants += 1;
        const limited = fleet.stations
          .filter((s) => cabinet.includes(s.id) && s.online)
          .flatMap((s) => s.connectors)
          .filter((c) => c.transaction && c.vehicle && c.limit && c.vehicle.acceptedPowerW({ kind: 'DC', voltageV: 230, stationPhases: 3, maxPowerW: 150000 }) > c.limit.value + 1)
          .map((c) => c.limit!.value);
        // Within the balancer's hysteresis (5 % or 1 kW, whichever is larger).
        if (limited.length > 1 && Math.max(...limited) - Math.min(...limited) > Math.max(1000, 0.05 * Math.max(...limited))) unequalShares += 1;
      }
      peak.site = Math.max(peak.site, siteW);
      peak.cabinet = Math.max(peak.cabinet, cabinetW);
      worstSiteOver = Math.max(worstSiteOver, siteW - limitOfNodeAt(site, now).maxW!);
      worstCabinetOver = Math.max(worstCabinetOver, cabinetW - 300_000);
      if (firstOver === undefined && (siteW - limitOfNodeAt(site, now).maxW! > 1 || cabinetW - 300_000 > 1)) firstOver = snapshot(now, siteW, cabinetW);
    };
    fleet.start();

    const waitUntil = async (t: Date) => {
      while (fleet.clock.now() < t) await new Promise((r) => setTimeout(r, 20));
    };
    await waitUntil(at(19, 30));
    // Three stations that are charging lose their connection for an hour and a half.
    cut.push(...fleet.stations.filter((s) => s.connectors.some((c) => c.transaction)).slice(0, 3));
    expect(cut).toHaveLength(3);
    for (const s of cut) s.cutConnection();
    await waitUntil(at(21));
    for (const s of cut) s.restoreConnection();
    await waitUntil(at(22, 30));
    fleet.stop();

    const transactions = (await server.api('GET', '/api/v1/transactions?limit=1000')).body.items;
    if (process.env.AMPYARD_PROOF_REPORT) console.log(JSON.stringify({ transactions: transactions.length, samples, peak, worstSiteOver, worstCabinetOver, obeyed, shortOfGrant, offlineCharging, unequalShares, cabinetFullInstants }));
    expect(transactions.length).toBeGreaterThanOrEqual(15);
    expect(samples).toBeGreaterThan(4 * 3600);
    // The limits held at every simulated second, the curtailment included (1 W of rounding allowed).
    expect(worstSiteOver, firstOver).toBeLessThanOrEqual(1);
    expect(worstCabinetOver, firstOver).toBeLessThanOrEqual(1);
    // The site was really busy: the limits were what held it, not a lack of buses.
    expect(peak.cabinet).toBeGreaterThan(250_000);
    expect(peak.site).toBeGreaterThan(550_000);
    // The curtailment held the site well below what it drew otherwise.
    expect(peak.site).toBeGreaterThan(800_000);
    expect(peak.curtailed).toBeGreaterThan(400_000);
    expect(peak.curtailed).toBeLessThanOrEqual(600_001);
    expect(shortOfGrant).toBe(0);
    // Cut off, the three stations kept charging under the profiles they held, inside the limits.
    expect(offlineCharging).toBeGreaterThan(0);
    expect(cabinetFullInstants).toBeGreaterThan(0);
    // Equal shares most of the time. The exceptions are by design: a bus that drew less than it was
    // granted is held at what it drew plus a margin until a later round sees it take more, and within
    // a round lowers are applied before raises.
    expect(unequalShares / cabinetFullInstants).toBeLessThan(0.1);
    expect(obeyed).toBeGreaterThan(0);
  }, 120_000);
});
