/**
 * The reference of the benchmarks: the least a server can do for OCPP-J on `ws`: parse each CALL
 * and answer it with a fixed CALLRESULT. No validation, no storage. Run as its own process so
 * its CPU can be measured like Ampyard's; prints its port on stdout.
 */
import { WebSocketServer } from 'ws';

const fixed: Record<string, unknown> = {
  BootNotification: { status: 'Accepted', currentTime: new Date().toISOString(), interval: 300 },
  Heartbeat: { currentTime: new Date().toISOString() },
  StartTransaction: { transactionId: 1, idTagInfo: { status: 'Accepted' } },
  StopTransaction: {},
  Authorize: { idTagInfo: { status: 'Accepted' } },
};

// The backlog Ampyard asks for (app.ts): with Node's default of 511 a storm of 10,000 had 13,000–16,700
// connections dropped on the bare server's full queue (retried by TCP), against none in most of Ampyard's.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 8192, perMessageDeflate: false, handleProtocols: () => 'ocpp1.6' });
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const [type, id, action] = JSON.parse(data.toString());
    if (type === 2) ws.send(JSON.stringify([3, id, fixed[action] ?? {}]));
  });
});
wss.on('listening', () => {
  const address = wss.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
