// The interface every bench target implements (the hub, and the bare grpc-js baseline), shaped
// like the peers harness's targets (../shared/bench/peers/README.md) so workloads are shared.

/** Connection details a target hands to subscriber host processes (JSON-serialisable). */
export type Conn = Record<string, unknown> & { address: string };

export interface ServerOptions {
  /** Temp folder for this server's files. */
  dir: string;
  /** Receiver accounts s0..s(n-1) the workload will use. */
  receivers: number;
  /** scrypt cost (log2 N) of the receivers' stored password hashes. */
  receiverLogN: number;
  /** Bench-only: trust the id in the credentials without checking the password (auth overhead figure). */
  bypassAuth?: boolean;
}

export interface ServerHandle {
  pid: number;
  conn: Conn;
  /** Command line, for the JSON report. */
  command: string;
  stop(): Promise<void>;
}

export type PublishMode = 'stream' | 'unary';

export interface Publisher {
  /** Resolves when the server acknowledged the push (after commit, for the hub). */
  publishTargeted(idx: number, payload: Buffer): Promise<void>;
  publishBroadcast(payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

export interface Subscriber {
  /** Graceful disconnect; a later connectSubscriber for the same idx resumes where this one stopped. */
  close(): Promise<void>;
}

export interface BenchTarget {
  name: string;
  label: string;
  startServer(options: ServerOptions): Promise<ServerHandle>;
  connectPublisher(conn: Conn, mode: PublishMode): Promise<Publisher>;
  /** Resolves once the server will deliver live pushes to this subscriber; onMessage gets the exact published bytes. */
  connectSubscriber(conn: Conn, idx: number, onMessage: (payload: Buffer) => void): Promise<Subscriber>;
}
