import net from 'node:net';

/**
 * A TCP forwarder on 127.0.0.1:0 whose connections reach `target` from `localAddress` (any
 * of 127.0.0.0/8): grpc-js clients (the SDKs, the daemon) cannot bind a local address, so a
 * test that needs them on distinct client addresses points them at a forwarder each.
 */
export class SourceForwarder {
  private constructor(
    private readonly server: net.Server,
    private readonly sockets: Set<net.Socket>,
    readonly address: string,
  ) {}

  /** Listens on `port` (default: a free one), so a forwarder stopped and started again keeps its address. */
  static async start(target: string, localAddress: string, port = 0): Promise<SourceForwarder> {
    const split = target.lastIndexOf(':');
    const [host, targetPort] = [target.slice(0, split), Number(target.slice(split + 1))];
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect({ host, port: targetPort, localAddress });
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.once('close', () => {
          sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new SourceForwarder(server, sockets, `127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  }

  /** Stops listening and resets every connection (RST, as a crashed host's would be). */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.resetAndDestroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
