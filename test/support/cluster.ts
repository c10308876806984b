import { type Channel, createChannel, createClient } from 'nice-grpc';
import { PushHubServiceDefinition } from '../../sdk/src/gen/pushhub/v1/pushhub.js';
import type { HubClient } from './hub.js';
import { HubProcess, freePort } from './hub-process.js';
import { freshDatabase } from './postgres.js';

/** Options of {@link HubCluster.create}. */
export interface ClusterOptions {
  /** Node names, one hub process each (default A, B, C). */
  names?: string[];
  /** Extra hub flags for every node (after the harness defaults, so they win). */
  extraArgs?: string[];
  /** A database URL to share; default: a fresh database on the run's embedded PostgreSQL. */
  databaseUrl?: string;
}

/**
 * One node of a {@link HubCluster}: a real hub process (`node --import tsx src/main.ts
 * --database-url ...`) on its own port, which it keeps across restarts so clients holding
 * its address find it again.
 */
export class ClusterNode extends HubProcess {
  private running = false;

  constructor(
    readonly name: string,
    databaseUrl: string,
    port: number,
    extraArgs: string[],
  ) {
    super(databaseUrl, port, extraArgs);
  }

  /** Whether the node's process is up (started and neither killed nor stopped since). */
  get isRunning(): boolean {
    return this.running;
  }

  override async start(): Promise<void> {
    await super.start();
    this.running = true;
  }

  override async kill(): Promise<void> {
    this.running = false;
    await super.kill();
  }

  override async stop(): Promise<number | null> {
    this.running = false;
    return super.stop();
  }
}

/**
 * N hub nodes sharing one PostgreSQL database, each a real process on its own loopback port
 * (scrypt logN 4 and the harness limits of {@link HubProcess}). Nodes start, stop (SIGTERM)
 * and crash (SIGKILL) one at a time; the database outlives them all.
 */
export class HubCluster {
  private readonly channels: Channel[] = [];

  private constructor(
    readonly databaseUrl: string,
    readonly nodes: ClusterNode[],
  ) {}

  /** Prepares the nodes (ports, a fresh database) without starting any; see {@link start}. */
  static async create(options: ClusterOptions = {}): Promise<HubCluster> {
    const databaseUrl = options.databaseUrl ?? (await freshDatabase());
    const names = options.names ?? ['A', 'B', 'C'];
    const nodes: ClusterNode[] = [];
    for (const name of names) nodes.push(new ClusterNode(name, databaseUrl, await freePort(), options.extraArgs ?? []));
    return new HubCluster(databaseUrl, nodes);
  }

  /** Creates the cluster and starts every node (one after the other: the first one migrates). */
  static async start(options: ClusterOptions = {}): Promise<HubCluster> {
    const cluster = await HubCluster.create(options);
    try {
      for (const node of cluster.nodes) await node.start();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The node with this name. */
  node(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name} in this cluster`);
    return node;
  }

  /** Addresses of the named nodes (default: all), for an SDK address list. */
  addresses(...names: string[]): string[] {
    return (names.length > 0 ? names.map((n) => this.node(n)) : this.nodes).map((n) => n.address);
  }

  /** A raw generated client talking to one node only (closed by {@link stop}). */
  client(name: string): HubClient {
    const channel = createChannel(this.node(name).address);
    this.channels.push(channel);
    return createClient(PushHubServiceDefinition, channel);
  }

  /** Starts every node that is not running (after a test killed some). */
  async startAll(): Promise<void> {
    for (const node of this.nodes) if (!node.isRunning) await node.start();
  }

  /** Unexpected errors every node logged, prefixed with the node's name. */
  errorLines(): string[] {
    return this.nodes.flatMap((n) => n.errorLines.map((line) => `${n.name}: ${line}`));
  }

  /** Stops every node (SIGTERM) and closes the clients; the database is left for inspection. */
  async stop(): Promise<void> {
    for (const channel of this.channels.splice(0)) channel.close();
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
