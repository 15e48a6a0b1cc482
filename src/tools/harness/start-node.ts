import { NodeProcess, type SpawnOptions } from './node-process.js';

/** How one node is started: its flags besides the ones startMaster/startFollower give, and how its process runs. */
export interface NodeStart extends SpawnOptions {
  /** master-server or follower-client flags, after the ones the start function sets. */
  args?: string[];
  /** How long the node may take to log that it is ready (opening a large store takes a while). */
  readyTimeoutMs?: number;
}

/** b laid over a: flags, node flags and environments add up; the rest b replaces. */
export function mergeStart(a: NodeStart = {}, b: NodeStart = {}): NodeStart {
  return {
    ...a,
    ...b,
    args: [...(a.args ?? []), ...(b.args ?? [])],
    nodeArgs: [...(a.nodeArgs ?? []), ...(b.nodeArgs ?? [])],
    env: { ...a.env, ...b.env },
  };
}

/** A loopback address on a port the OS picks; the node logs the one it got. */
export const ANY_PORT = '127.0.0.1:0';

export interface MasterHandle {
  proc: NodeProcess;
  address: string;
  /** Where it serves Prometheus metrics (undefined with --metrics-listen off). */
  metricsAddress?: string;
}

export interface FollowerHandle {
  proc: NodeProcess;
  readAddress: string;
  metricsAddress?: string;
}

/** Starts a node and waits for its ready line; a node that does not get there is killed. */
async function startNode(tool: string, args: string[], ready: string, opts: NodeStart): Promise<{ proc: NodeProcess; line: Record<string, unknown> }> {
  const proc = new NodeProcess(tool, [...args, ...(opts.args ?? [])], opts);
  try {
    return { proc, line: await proc.waitForLog(ready, opts.readyTimeoutMs) };
  } catch (err) {
    await proc.kill('SIGKILL');
    throw err;
  }
}

/** A master on dataDir, serving on listen (a free port by default); resolves once it listens. */
export async function startMaster(dataDir: string, listen = ANY_PORT, opts: NodeStart = {}): Promise<MasterHandle> {
  const { proc, line } = await startNode('master-server', ['--data-dir', dataDir, '--listen', listen], 'master listening', opts);
  return { proc, address: line.address as string, metricsAddress: line.metricsAddress as string | undefined };
}

/** Follower id on dataDir, replicating from master, serving reads on a free port; resolves once it serves. */
export async function startFollower(id: number, dataDir: string, master: string, opts: NodeStart = {}): Promise<FollowerHandle> {
  const { proc, line } = await startNode(
    'follower-client',
    [String(id), '--data-dir', dataDir, '--master', master, '--listen', ANY_PORT],
    'follower serving reads',
    opts,
  );
  return { proc, readAddress: line.readAddress as string, metricsAddress: line.metricsAddress as string | undefined };
}
