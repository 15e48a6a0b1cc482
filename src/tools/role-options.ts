import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS, parseNonNegativeInt, parsePositiveInt } from '../common/config.js';
import type { OptionSpec } from '../common/options.js';
import type { FollowerOptions } from '../follower/follower-node.js';
import { DEFAULT_PROGRESS_INTERVAL_MS } from '../follower/progress.js';
import { DEFAULT_ACK_TIMEOUT_MS } from '../master/ack-policy.js';
import type { MasterOptions } from '../master/master-node.js';
import { DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS } from '../master/write-gate.js';

/**
 * The options of each role, defined once and taken by both node commands: master-server
 * and follower-client run the same node runner, which can switch a process from one role
 * to the other (promotion, deposition). Each command declares the other role's options
 * too, so the role it switches to runs with the operator's settings, not built-in
 * defaults. The flag, its environment variable and its default are the same in both
 * commands: one setting, whichever process ends up using it.
 *
 * Options every node has in its first role already (--listen, --data-dir, --sync,
 * --retain-entries, --log-segment-bytes, --metrics-listen) stay with each command: their
 * environment variables differ between the commands, and the node keeps them across a
 * role change.
 */

/** A sanity bound for follower counts in options (uint32 on the wire). */
const MAX_FOLLOWER_COUNT = 10_000;
const followerCount = (raw: unknown, flag: string) => parseNonNegativeInt(raw, flag, MAX_FOLLOWER_COUNT);

/** The master role's own options: group commit, heartbeats, log retention, write acknowledgement and the write gate. */
export const MASTER_ROLE_OPTIONS: Record<string, OptionSpec> = {
  'max-group-entries': { type: 'number', default: 10_000, env: 'LR_MAX_GROUP_ENTRIES', describe: 'Most writes (seqs) committed together in one batch and one fsync', parse: parsePositiveInt },
  'heartbeat-interval-ms': { type: 'number', default: DEFAULT_HEARTBEAT_INTERVAL_MS, env: 'LR_HEARTBEAT_INTERVAL_MS', describe: 'Idle time after which a heartbeat is sent on each follower stream', parse: parsePositiveInt },
  'retain-age-ms': { type: 'number', default: 0, env: 'LR_RETAIN_AGE_MS', describe: 'Log retention: also keep entries younger than this (0: no age rule)', parse: parseNonNegativeInt },
  'retain-bytes': { type: 'number', default: 0, env: 'LR_RETAIN_BYTES', describe: 'Log retention: also keep the newest entries up to this many bytes on disk (0: no bytes rule)', parse: parseNonNegativeInt },
  'slot-max-lag-entries': { type: 'number', default: 10_000_000, env: 'LR_SLOT_MAX_LAG_ENTRIES', describe: 'Retention cap: the log stops waiting for a follower this many entries behind (it gets a snapshot later)', parse: parsePositiveInt },
  'slot-max-lag-bytes': { type: 'number', default: 1024 ** 3, env: 'LR_SLOT_MAX_LAG_BYTES', describe: 'Retention cap in bytes of log on disk (0: no bytes cap)', parse: parseNonNegativeInt },
  'trim-interval-ms': { type: 'number', default: 1_000, env: 'LR_TRIM_INTERVAL_MS', describe: 'How often the log is trimmed', parse: parsePositiveInt },
  'ack-followers': { type: 'number', default: 0, env: 'LR_MASTER_ACK_FOLLOWERS', describe: 'Default for writes that do not say: answer once this many followers durably applied the write (0: once committed on the master)', parse: followerCount },
  'ack-timeout-ms': { type: 'number', default: DEFAULT_ACK_TIMEOUT_MS, env: 'LR_MASTER_ACK_TIMEOUT_MS', describe: 'Default longest wait for those followers; on timeout the write stays committed and the answer says REPLICATION_TIMEOUT', parse: parsePositiveInt },
  'min-followers': { type: 'number', default: 0, env: 'LR_MASTER_MIN_FOLLOWERS', describe: 'Refuse writes (NOT_ENOUGH_FOLLOWERS) while fewer than this many followers are connected with lag <= --min-followers-max-lag-ms (0: never refuse)', parse: followerCount },
  'min-followers-max-lag-ms': { type: 'number', default: DEFAULT_MIN_FOLLOWERS_MAX_LAG_MS, env: 'LR_MASTER_MIN_FOLLOWERS_MAX_LAG_MS', describe: 'Lag (and time since the last acknowledgement) above which a follower does not count for --min-followers', parse: parsePositiveInt },
};

/** The follower role's own options: how it watches its upstream and reports progress. */
export const FOLLOWER_ROLE_OPTIONS: Record<string, OptionSpec> = {
  'heartbeat-timeout-ms': { type: 'number', default: DEFAULT_HEARTBEAT_TIMEOUT_MS, env: 'LR_HEARTBEAT_TIMEOUT_MS', describe: 'Reconnect when the master has been silent this long', parse: parsePositiveInt },
  'progress-interval-ms': { type: 'number', default: DEFAULT_PROGRESS_INTERVAL_MS, env: 'LR_PROGRESS_INTERVAL_MS', describe: 'How often snapshot and catch-up progress is logged when stderr is not a terminal (a terminal gets a live bar)', parse: parsePositiveInt },
};

/**
 * The same options with a note added to their --help text (when they take effect), or for
 * those in `replace` another text: only the words change, never the flag, variable or default.
 */
export function describedAs(specs: Record<string, OptionSpec>, note: string, replace: Record<string, string> = {}): Record<string, OptionSpec> {
  return Object.fromEntries(Object.entries(specs).map(([name, spec]) => [name, { ...spec, describe: replace[name] ?? `${spec.describe}; ${note}` }]));
}

/** The master role's settings from the parsed options of MASTER_ROLE_OPTIONS; retainEntries is the command's own --retain-entries. */
export function masterRoleSettings(argv: Record<string, unknown>, retainEntries: number): Pick<MasterOptions, 'maxGroupEntries' | 'heartbeatIntervalMs' | 'retention' | 'ack' | 'gate'> {
  return {
    maxGroupEntries: argv['max-group-entries'] as number,
    heartbeatIntervalMs: argv['heartbeat-interval-ms'] as number,
    retention: {
      retainEntries: BigInt(retainEntries),
      retainAgeMs: argv['retain-age-ms'] as number,
      retainBytes: argv['retain-bytes'] as number,
      slotMaxLagEntries: BigInt(argv['slot-max-lag-entries'] as number),
      slotMaxLagBytes: argv['slot-max-lag-bytes'] as number,
      trimIntervalMs: argv['trim-interval-ms'] as number,
    },
    ack: { followers: argv['ack-followers'] as number, timeoutMs: argv['ack-timeout-ms'] as number },
    gate: { minFollowers: argv['min-followers'] as number, maxLagMs: argv['min-followers-max-lag-ms'] as number },
  };
}

/** The follower role's settings from the parsed options of FOLLOWER_ROLE_OPTIONS. */
export function followerRoleSettings(argv: Record<string, unknown>): Pick<FollowerOptions, 'heartbeatTimeoutMs' | 'progressIntervalMs'> {
  return {
    heartbeatTimeoutMs: argv['heartbeat-timeout-ms'] as number,
    progressIntervalMs: argv['progress-interval-ms'] as number,
  };
}
