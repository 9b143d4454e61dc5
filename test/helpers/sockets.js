import { connect, createServer as createNetServer } from 'node:net';
/**
 * `count` TCP connections that arrive together, as in a storm: accepted (paused) by a listener of
 * the test's, whose server-side sockets can then be given to a paced listener at once.
 */
export async function connectedTogether(count) {
    const accepted = [];
    const tcp = createNetServer({ pauseOnConnect: true }, (socket) => accepted.push(socket));
    await new Promise((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = tcp.address().port;
    const clients = await Promise.all(Array.from({ length: count }, () => new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
    })));
    while (accepted.length < count)
        await new Promise((r) => setImmediate(r));
    return { clients, accepted, port, close: () => tcp.close() };
}
//# sourceMappingURL=sockets.js.map