import type { AuthorizationService } from './authorization.js';
import { normaliseSample, type SampledValueInput } from './meter.js';
import type { Clock, EventBus, Store } from './ports.js';
import type { Authorization, MeterReading, StatusChange, Transaction } from './types.js';

export interface StartRequest {
  stationId: string;
  connectorId: number;
  idTag: string;
  meterStart: number;
  timestamp: string;
  reservationId?: number;
}

export interface StopRequest {
  stationId: string;
  transactionId: number;
  meterStop: number;
  timestamp: string;
  idTag?: string;
  reason?: string;
  transactionData?: Array<{ timestamp: string; sampledValue: SampledValueInput[] }>;
}

export interface TransactionServiceOptions {
  /** Whether one identifier may run transactions on several connectors at once. */
  allowConcurrentTx: boolean;
}

/**
 * Transactions, meter values and connector status. Every method resolves only after its data is
 * committed, so the adapter can answer the station knowing nothing acknowledged can be lost.
 */
export class TransactionService {
  /**
   * The station of each transaction seen in this process. A transaction never moves to another
   * station and is never deleted, so once known this answers the check of every MeterValues
   * without a read (a primary-key select was 16 µs of SQLite per MeterValues under `saturate`).
   */
  private readonly stationOfTransaction = new Map<number, string>();
  private static readonly maxRemembered = 100_000;

  constructor(
    private readonly store: Store,
    private readonly events: EventBus,
    private readonly clock: Clock,
    private readonly authorization: AuthorizationService,
    private readonly options: TransactionServiceOptions,
  ) {}

  /**
   * A transaction the station started is recorded whatever its identifier's status: the station has
   * already begun (possibly offline) and will stop it itself when told the id is not Accepted.
   */
  async start(req: StartRequest): Promise<{ transaction: Transaction; authorization: Authorization }> {
    let authorization = await this.authorization.authorize(req.idTag);
    if (authorization.status === 'Accepted' && !this.options.allowConcurrentTx) {
      const elsewhere = await this.store.otherActiveTransactionOfIdTag(req.idTag, { stationId: req.stationId, connectorId: req.connectorId, startTime: iso(req.timestamp) });
      if (elsewhere) authorization = { ...authorization, status: 'ConcurrentTx' };
    }
    const { transaction, repeated } = await this.store.startTransaction({
      stationId: req.stationId,
      connectorId: req.connectorId,
      idTag: req.idTag,
      meterStart: req.meterStart,
      startTime: iso(req.timestamp),
      reservationId: req.reservationId ?? null,
      authorization: authorization.status,
    });
    this.rememberStation(transaction);
    if (!repeated) {
      if (req.reservationId !== undefined) {
        const reservation = await this.store.getReservation(req.reservationId);
        // The station's own timestamp says when the reservation was used, even if it reports late.
        const usedInTime = reservation !== undefined && Date.parse(reservation.expiryDate) > Date.parse(transaction.startTime);
        if (reservation && reservation.stationId === req.stationId && reservation.status === 'active') {
          await this.store.updateReservation(reservation.id, usedInTime ? 'used' : 'expired');
        }
      }
      this.events.publish({ type: 'transaction.started', at: this.clock.now().toISOString(), transaction });
    }
    // A repeat after a lost answer gets the answer the first one got.
    return { transaction, authorization: repeated ? { ...authorization, status: transaction.authorization } : authorization };
  }

  async stop(req: StopRequest): Promise<{ transaction?: Transaction; authorization?: Authorization; unknownTransaction: boolean }> {
    const existing = await this.store.getTransaction(req.transactionId);
    if (existing && existing.stationId !== req.stationId) {
      // Another station's transaction id: nothing of it is ours to stop. Keep the report for an operator.
      await this.store.addStationEvent({ stationId: req.stationId, kind: 'UnknownTransactionStop', status: null, timestamp: iso(req.timestamp), payload: req });
      return { unknownTransaction: true, authorization: req.idTag ? await this.authorization.authorize(req.idTag) : undefined };
    }
    if (!existing) {
      await this.store.addStationEvent({ stationId: req.stationId, kind: 'UnknownTransactionStop', status: null, timestamp: iso(req.timestamp), payload: req });
      return { unknownTransaction: true, authorization: req.idTag ? await this.authorization.authorize(req.idTag) : undefined };
    }
    if (req.transactionData?.length) {
      await this.addMeterValues(req.stationId, existing.connectorId, existing.id, req.transactionData);
    }
    const { transaction, repeated } = await this.store.stopTransaction({
      id: req.transactionId,
      stopTime: iso(req.timestamp),
      meterStop: req.meterStop,
      stopReason: req.reason ?? (req.idTag ? 'Local' : null),
      stopIdTag: req.idTag ?? null,
    });
    if (transaction && !repeated) this.events.publish({ type: 'transaction.stopped', at: this.clock.now().toISOString(), transaction });
    return { transaction, unknownTransaction: false, authorization: req.idTag ? await this.authorization.authorize(req.idTag) : undefined };
  }

  /** Stores meter values; readings the station already sent once are recognised and not counted again. */
  async addMeterValues(
    stationId: string,
    connectorId: number,
    transactionId: number | null,
    meterValue: Array<{ timestamp: string; sampledValue: SampledValueInput[] }>,
  ): Promise<MeterReading[]> {
    let txId = transactionId;
    if (txId !== null && this.stationOfTransaction.get(txId) !== stationId) {
      const tx = await this.store.getTransaction(txId);
      // A transaction id we do not know (or of another station) must not attach readings to it.
      if (!tx || tx.stationId !== stationId) txId = null;
      else this.rememberStation(tx);
    }
    const readings = meterValue.flatMap((mv) => normaliseSample({ stationId, connectorId, transactionId: txId }, iso(mv.timestamp), mv.sampledValue));
    await this.store.addMeterReadings(readings);
    this.events.publish({ type: 'meter.values', at: this.clock.now().toISOString(), stationId, connectorId, transactionId: txId, readings });
    return readings;
  }

  private rememberStation(tx: Pick<Transaction, 'id' | 'stationId'>): void {
    if (this.stationOfTransaction.size >= TransactionService.maxRemembered) this.stationOfTransaction.clear();
    this.stationOfTransaction.set(tx.id, tx.stationId);
  }

  async recordStatus(change: Omit<StatusChange, 'receivedAt' | 'since'> & { timestamp?: string }): Promise<void> {
    const now = this.clock.now().toISOString();
    const { timestamp, ...rest } = change;
    const status: StatusChange = { ...rest, since: timestamp ? iso(timestamp) : now, receivedAt: now };
    await this.store.recordStatus(status);
    this.events.publish({ type: 'connector.status', at: now, status });
  }
}

/**
 * A time already written as `toISOString` writes it, with a day of the month every month has: it
 * normalises to itself. Days 29 to 31 are left to Date, which moves 2026-02-30 to 2026-03-02.
 */
const canonicalIso = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

/**
 * Normalises any ISO-8601 time to UTC with milliseconds, so that stored times compare as text. A
 * time in that form already is returned as it is: parsing and writing it again took 0.7-0.9 µs, on
 * the path of every MeterValues.
 */
export function iso(t: string | Date): string {
  if (typeof t === 'string' && canonicalIso.test(t)) return t;
  const d = typeof t === 'string' ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) throw new RangeError(`not a valid time: ${String(t)}`);
  return d.toISOString();
}
