/**
 * A free TCP port on 127.0.0.1, for a process that must be told its port up
 * front (redis-server, nginx, a README snippet that listens on `PORT`): bind
 * port 0, read it, close. Servers of our own listen on port 0 instead.
 */
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}
