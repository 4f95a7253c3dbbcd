import net from 'node:net';

const LOOPBACK = '127.0.0.1';

/**
 * A TCP port on 127.0.0.1 that nothing listens on: `preferred` when it is free, else one the OS picks.
 * There is a window between this check and the caller's bind; callers that can, retry on EADDRINUSE.
 */
export async function freePort(preferred?: number): Promise<number> {
  if (preferred !== undefined && (await isPortFree(preferred))) return preferred;
  return pickEphemeralPort();
}

export async function isPortFree(port: number, host = LOOPBACK): Promise<boolean> {
  // Binding alone is not proof on macOS, where SO_REUSEADDR lets us bind next to a wildcard listener.
  return (await canBind(port, host)) && !(await answersOnPort(port, host));
}

export function answersOnPort(port: number, host = LOOPBACK, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function pickEphemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: LOOPBACK, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('The OS did not report the port it picked'));
      });
    });
  });
}
