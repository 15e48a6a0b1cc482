import { ReplicationState, type StreamState } from '../common/replication-state.js';
import type { FollowerStatus__Output } from './generated/levelreplicator/v1/FollowerStatus.js';

/** The Status RPC's FollowerStatus.State enum (by name). */
export type WireFollowerState = FollowerStatus__Output['state'];

const S = ReplicationState;

/** Each state's enum value: its name in upper case (the proto enum was named after the vocabulary). */
const TO_WIRE: Record<StreamState, WireFollowerState> = {
  [S.CONNECTING]: 'CONNECTING',
  [S.SNAPSHOT]: 'SNAPSHOT',
  [S.CATCHING_UP]: 'CATCHING_UP',
  [S.STREAMING]: 'STREAMING',
  [S.DISCONNECTED]: 'DISCONNECTED',
};

const FROM_WIRE = new Map<string, StreamState>(Object.entries(TO_WIRE).map(([state, wire]) => [wire, state as StreamState]));

export function stateToWire(state: StreamState): WireFollowerState {
  return TO_WIRE[state];
}

/**
 * The state a Status answer names. A value this build does not know (from a newer master)
 * is passed on in lower case rather than refused: a status tool shows what it is told.
 */
export function stateFromWire(state: WireFollowerState): string {
  return FROM_WIRE.get(String(state)) ?? String(state).toLowerCase();
}
