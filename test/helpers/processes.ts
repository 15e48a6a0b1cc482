/**
 * The tests' view of the process harness (src/tools/harness, shared with the bench): the
 * same processes, started with the tests' timing.
 */
import * as harness from '../../src/tools/harness/start-node.js';
import type { FollowerHandle, MasterHandle } from '../../src/tools/harness/start-node.js';

export { tempDir } from '../../src/tools/harness/cluster.js';
export { NodeProcess as ServerProcess, type LogLine } from '../../src/tools/harness/node-process.js';
export { waitFor } from '../../src/tools/harness/polling.js';
export { runTool, type ToolResult } from '../../src/tools/harness/run-tool.js';
export type { FollowerHandle, MasterHandle };

/** The master's heartbeat interval in tests: an idle stream still carries a message this often. */
export const TEST_HEARTBEAT_INTERVAL_MS = 200;
/** The follower heartbeat watchdog in tests: a stream silent this long is dropped and reconnected. */
export const TEST_HEARTBEAT_TIMEOUT_MS = 2_000;
export const TEST_MASTER_ARGS = ['--heartbeat-interval-ms', String(TEST_HEARTBEAT_INTERVAL_MS)];
export const TEST_FOLLOWER_ARGS = ['--heartbeat-timeout-ms', String(TEST_HEARTBEAT_TIMEOUT_MS)];

export function startMaster(dataDir: string, listen?: string, extra: string[] = []): Promise<MasterHandle> {
  return harness.startMaster(dataDir, listen, { args: [...TEST_MASTER_ARGS, ...extra] });
}

export function startFollower(id: number, dataDir: string, master: string, extra: string[] = []): Promise<FollowerHandle> {
  return harness.startFollower(id, dataDir, master, { args: [...TEST_FOLLOWER_ARGS, ...extra] });
}
