import net from 'node:net';

/**
 * Sends a raw PING and returns the first reply line ("+PONG", "-LOADING …", "-NOAUTH …"),
 * or undefined when nothing answered in time. Raw RESP so a probe never needs a client's retry logic.
 */
export function pingRedis(host: string, port: number, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let reply = '';
    const done = (result: string | undefined) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('error', () => done(undefined));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      const end = reply.indexOf('\r\n');
      if (end >= 0) done(reply.slice(0, end));
    });
    socket.once('end', () => done(reply || undefined));
  });
}
