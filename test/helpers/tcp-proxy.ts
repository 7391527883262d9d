/**
 * A TCP proxy on 127.0.0.1 (port 0) in front of a server, for faults a real
 * server does not make on demand: while `dropClientData` is set, chunks from a
 * client that match it are swallowed, so the command gets no answer although
 * the connection stays up (a command timeout on a live link). Bounded: one
 * pair of sockets per client connection, all destroyed by `close`.
 */
import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

export class TcpProxy {
  /** Client chunks matching this are dropped instead of forwarded. */
  dropClientData: RegExp | undefined;
  /** How many client chunks were dropped. */
  dropped = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Listens on a free port and forwards every connection to `targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new TcpProxy(server, (server.address() as AddressInfo).port);
    server.on('connection', (client: Socket) => proxy.pipe(client, targetPort));
    return proxy;
  }

  private pipe(client: Socket, targetPort: number): void {
    const upstream = new Socket();
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on('error', () => socket.destroy());
    }
    upstream.connect(targetPort, '127.0.0.1');
    client.on('data', (chunk: Buffer) => {
      if (this.dropClientData?.test(chunk.toString('latin1'))) {
        this.dropped++;
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
  }

  /** Cuts every connection through the proxy (both ends destroyed); new ones are still forwarded. */
  cutAll(): number {
    const count = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return count;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
