import { isIP } from 'node:net';
import tls from 'node:tls';
import { ConnectionReason, PushHubError, Status } from './errors.js';

/** What a client dialled: for the message, and for the TLS probe. */
export interface Endpoint {
  /** The grpc-js target (one host:port, a list, or a scheme such as dns:). */
  target: string;
  /** Whether the client connects with TLS, and whether it passed its own CA. */
  tls: { ca: boolean } | undefined;
}

/** The first HOST:PORT of a target (`ipv4:a,b` -> a; `dns:name:port` -> name:port); undefined for unix sockets. */
function firstHostPort(target: string): { host: string; port: number; text: string } | undefined {
  if (/^unix(-abstract)?:/.test(target)) return undefined;
  const first = target.replace(/^(dns|ipv4|ipv6):(\/\/[^/]*\/)?/, '').split(',')[0]!.trim();
  const split = first.lastIndexOf(':');
  const host = first.slice(0, split).replace(/^\[(.*)\]$/, '$1');
  const port = Number(first.slice(split + 1));
  return split > 0 && Number.isInteger(port) ? { host, port, text: first } : undefined;
}

/** Whether a plaintext client was refused by a hub that answers TLS (a short handshake probe). */
function speaksTls(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port,
      // An IP address is no server name (RFC 6066): no SNI, and no Node deprecation warning.
      servername: isIP(host) ? undefined : host,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    const done = (result: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(false), 2000);
    socket.once('secureConnect', () => done(true));
    socket.once('error', () => done(false));
  });
}

const fixCa = 'pass the CA certificate that signed it (SDK: `tls: { ca }`; pushhub-receiver and pushhub-offers: `--ca FILE`)';

/**
 * Explains a call that failed before reaching the hub: grpc-js says e.g. "round_robin: No
 * connection established. Last error: ... wrong version number"; this says "the hub at
 * 127.0.0.1:50051 is plaintext: ...". Errors that reached the hub, or whose cause is not
 * recognised, are returned unchanged.
 */
export async function explainConnectionError(error: unknown, endpoint: Endpoint | undefined): Promise<unknown> {
  if (!(error instanceof PushHubError) || error.code !== Status.UNAVAILABLE || error.reason !== '' || !endpoint) return error;
  const details = error.details;
  const hub = firstHostPort(endpoint.target);
  const where = hub?.text ?? endpoint.target;
  const explained = (reason: string, message: string) => new PushHubError(Status.UNAVAILABLE, reason, message, error.path);

  const altname = /Host: (.+?)\. is not in the cert's altnames: (.*?)\.(?: Resolution note|$)/.exec(details);
  if (altname) {
    return explained(ConnectionReason.TLS_NAME_MISMATCH, `the hub's certificate is for ${altname[2]}, not ${altname[1]}: dial a name the certificate has, or add ${altname[1]} to its subject alternative names (see docs/tls.md)`);
  }
  const ipAltname = /IP: (\S+) is not in the cert's list: (.*?)\.?(?: Resolution note|$)/.exec(details);
  if (ipAltname) {
    const listed = ipAltname[2]!.trim() === '' ? 'no IP address' : `IP ${ipAltname[2]!.trim()}`;
    return explained(ConnectionReason.TLS_NAME_MISMATCH, `the hub's certificate is for ${listed}, not IP ${ipAltname[1]}: dial a host name the certificate has, or add IP:${ipAltname[1]} to its subject alternative names (see docs/tls.md)`);
  }
  if (/self[- ]signed certificate|unable to get local issuer certificate|unable to verify the first certificate|certificate signature failure|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/i.test(details)) {
    const kind = /self[- ]signed/i.test(details) ? 'a self-signed certificate' : 'a certificate signed by an unknown CA';
    const trust = endpoint.tls?.ca ? 'not signed by the CA you passed' : 'not signed by a CA this client trusts (the system roots)';
    return explained(ConnectionReason.TLS_UNTRUSTED, `the hub at ${where} has ${kind}, ${trust}: ${fixCa}`);
  }
  if (/certificate has expired|certificate is not yet valid|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/i.test(details)) {
    return explained(ConnectionReason.TLS_CERT_EXPIRED, `the hub at ${where} has a certificate that ${/not yet/i.test(details) ? 'is not valid yet' : 'has expired'}: renew it on the hub (see docs/tls.md, rotating certificates), or check this machine's clock`);
  }
  if (endpoint.tls && /wrong version number|packet length too long|unknown protocol|WRONG_VERSION_NUMBER|http request/i.test(details)) {
    return explained(ConnectionReason.HUB_IS_PLAINTEXT, `the hub at ${where} is plaintext (it does not answer TLS): connect without TLS, or start the hub with --tls-cert and --tls-key`);
  }
  const refused = /ECONNREFUSED (\S+?)\.?(?: |$)/.exec(details);
  if (refused) {
    return explained(ConnectionReason.HUB_UNREACHABLE, `nothing listens on ${refused[1]} (is the hub running, and is this its host and port?)`);
  }
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(details)) {
    return explained(ConnectionReason.HUB_UNREACHABLE, `the host name of ${where} does not resolve`);
  }
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(details)) {
    return explained(ConnectionReason.HUB_UNREACHABLE, `${where} does not answer (a firewall, or a wrong host?)`);
  }
  // A plaintext client at a TLS hub only sees that no connection could be established: ask
  // the hub in TLS. (Never for a call whose established connection dropped: that is a hub
  // restart or a network failure, and the retry handles it.)
  if (!endpoint.tls && hub && /No connection established/.test(details) && (await speaksTls(hub.host, hub.port))) {
    return explained(ConnectionReason.TLS_REQUIRED, `the hub at ${where} speaks TLS and this client connected in plaintext: ${fixCa}`);
  }
  return error;
}
