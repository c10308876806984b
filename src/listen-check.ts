import net from 'node:net';
import { addressHost } from './config.js';

/**
 * Checks that `address` can be listened on, before the hub opens (creates, migrates) its
 * database: a hub started on a port in use must leave nothing behind, and say which flag and
 * address (grpc-js only says "No address added out of total 1 resolved errors").
 *
 * A probe binds the address and closes it again; the real bind follows within milliseconds.
 * Should another program take the port in between, the real bind fails with the same words
 * (see describeListenFailure). Port 0 needs no check.
 */
export async function checkCanListen(flag: string, address: string): Promise<void> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  if (port === 0) return;
  const probe = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host: addressHost(address), port, exclusive: true }, resolve);
    });
  } catch (error) {
    throw new Error(describeListenFailure(flag, address, error));
  } finally {
    await new Promise<void>((resolve) => (probe.listening ? probe.close(() => resolve()) : resolve()));
  }
}

/** "--address HOST:PORT: cannot listen: <likely cause>", from a Node or grpc-js bind error. */
export function describeListenFailure(flag: string, address: string, error: unknown): string {
  const text = `${(error as NodeJS.ErrnoException)?.code ?? ''} ${String((error as Error)?.message ?? error)}`;
  const cause = /EADDRINUSE/.test(text)
    ? 'the port is already in use (another hub or program listens there); stop it or choose another port'
    : /EACCES/.test(text)
      ? 'permission denied (ports below 1024 need privileges, e.g. CAP_NET_BIND_SERVICE)'
      : /EADDRNOTAVAIL/.test(text)
        ? 'no network interface of this machine has that address'
        : /ENOTFOUND|EAI_AGAIN/.test(text)
          ? 'the host name does not resolve'
          : String((error as Error)?.message ?? error);
  return `${flag} ${address}: cannot listen: ${cause}`;
}
