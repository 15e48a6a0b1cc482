/**
 * The replication states: one vocabulary for the master's view of a follower (Status RPC,
 * replication-status, lr_master_followers{state}) and a follower's view of itself
 * (lr_follower_state{state}). These strings are external contracts (metric label values,
 * the CLI's output, the README): the Status RPC's enum is the same names in upper case
 * (wire/follower-status-state.ts).
 *
 *   connecting   -> subscribed; the follower's position is being checked
 *   snapshot     -> a snapshot of the master's store is being sent
 *   catching_up  -> the stream is sending entries committed before it started (or before its snapshot)
 *   streaming    -> the stream has sent everything once (like PostgreSQL's walsender; the
 *                   master keeps a follower here while connected, even if it falls behind again)
 *   disconnected -> no open stream
 *   stopped      -> (a follower node only) the node was shut down
 */
export const ReplicationState = {
  CONNECTING: 'connecting',
  SNAPSHOT: 'snapshot',
  CATCHING_UP: 'catching_up',
  STREAMING: 'streaming',
  DISCONNECTED: 'disconnected',
  STOPPED: 'stopped',
} as const;

const S = ReplicationState;

/** The states of one follower's subscription, as both ends see it. */
export const STREAM_STATES = [S.CONNECTING, S.SNAPSHOT, S.CATCHING_UP, S.STREAMING, S.DISCONNECTED] as const;
export type StreamState = (typeof STREAM_STATES)[number];

/** A follower node's states: its subscription's, and stopped once the node shuts down. */
export const FOLLOWER_NODE_STATES = [...STREAM_STATES, S.STOPPED] as const;
export type FollowerNodeState = (typeof FOLLOWER_NODE_STATES)[number];

/** A stream is open: subscribed, whether or not the master has accepted it yet. */
export function isConnectedState(state: FollowerNodeState): boolean {
  return state !== S.DISCONNECTED && state !== S.STOPPED;
}

/** The master accepted the stream: it is sending a snapshot or the log. */
export function isAcceptedState(state: FollowerNodeState): boolean {
  return state === S.SNAPSHOT || state === S.CATCHING_UP || state === S.STREAMING;
}

/** The stream is past its position check and snapshot: it is sending the log. */
export function isStreamingLogState(state: FollowerNodeState): boolean {
  return state === S.CATCHING_UP || state === S.STREAMING;
}
