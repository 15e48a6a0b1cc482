import * as grpc from '@grpc/grpc-js';
import { ErrorCode, isReplicatorError, ReplicatorError } from '../common/errors.js';
import { lastConnectionError, tlsFailureHint } from './transport-errors.js';

/** The one mapping from our error codes to gRPC status codes. */
export const GRPC_STATUS: Record<ErrorCode, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  EMPTY_KEY: grpc.status.INVALID_ARGUMENT,
  KEY_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  VALUE_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  BATCH_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  INVALID_FOLLOWER_ID: grpc.status.INVALID_ARGUMENT,
  INVALID_ADDRESS: grpc.status.INVALID_ARGUMENT,
  KEY_NOT_FOUND: grpc.status.NOT_FOUND,
  STORE_NOT_FOUND: grpc.status.NOT_FOUND,
  DATA_DIR_LOCKED: grpc.status.FAILED_PRECONDITION,
  ADDRESS_IN_USE: grpc.status.UNAVAILABLE,
  MASTER_UNAVAILABLE: grpc.status.UNAVAILABLE,
  FOLLOWER_UNAVAILABLE: grpc.status.UNAVAILABLE,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  LOG_TRIMMED: grpc.status.FAILED_PRECONDITION,
  FOLLOWER_AHEAD: grpc.status.OUT_OF_RANGE,
  HISTORY_MISMATCH: grpc.status.FAILED_PRECONDITION,
  DUPLICATE_FOLLOWER: grpc.status.ALREADY_EXISTS,
  SEQ_GAP: grpc.status.DATA_LOSS,
  CORRUPT_ENTRY: grpc.status.DATA_LOSS,
  UPGRADE_REQUIRED: grpc.status.FAILED_PRECONDITION,
  STORE_FAILED: grpc.status.INTERNAL,
  SHUTTING_DOWN: grpc.status.UNAVAILABLE,
  MALFORMED_REQUEST: grpc.status.INVALID_ARGUMENT,
  NOT_A_DATA_DIR: grpc.status.FAILED_PRECONDITION,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  TLS_FAILED: grpc.status.UNAVAILABLE,
  NOT_MASTER: grpc.status.FAILED_PRECONDITION,
  // Nothing was written, so retrying later is safe.
  NOT_ENOUGH_FOLLOWERS: grpc.status.UNAVAILABLE,
  // Never sent as a status: the write IS committed, so the master answers OK with
  // ack_status REPLICATION_TIMEOUT (an error status would invite a retry that writes twice).
  REPLICATION_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  SEQ_NOT_APPLIED: grpc.status.DEADLINE_EXCEEDED,
  SLOT_NOT_FOUND: grpc.status.NOT_FOUND,
  FOLLOWER_CONNECTED: grpc.status.FAILED_PRECONDITION,
  // The stream of a follower whose slot was dropped with force: it may subscribe again (and gets a new slot).
  SLOT_DROPPED: grpc.status.ABORTED,
  // A node at an older epoch than the caller has seen (a deposed master, a stale upstream).
  STALE_EPOCH: grpc.status.FAILED_PRECONDITION,
  FOLLOW_LOOP: grpc.status.FAILED_PRECONDITION,
  PROMOTION_REFUSED: grpc.status.FAILED_PRECONDITION,
  // Nothing was written: retry (at the master the error names, once it is known).
  WRITES_PAUSED: grpc.status.UNAVAILABLE,
  // The serving node's epoch history changed under a stream: subscribe again.
  EPOCH_CHANGED: grpc.status.UNAVAILABLE,
  NO_LEASE: grpc.status.UNAVAILABLE,
  INTERNAL: grpc.status.INTERNAL,
};

/** Appended to a Write's transport failure (unavailable, deadline): its outcome is unknown. */
export const WRITE_OUTCOME_UNKNOWN =
  'the write may or may not have been committed: check with replication-status (the master\'s last seq) or a read (get-data) before retrying';
/** Appended to a Write that never left this client: no connection to the node could be made, so nothing was written. */
export const WRITE_NOT_SENT = 'the write was not sent (no connection could be made): nothing was written';

/**
 * grpc-js fails a call with "No connection established" only from its picker, before the
 * call was given to any connection: such a call never reached the server.
 */
function neverSent(details: string | undefined): boolean {
  return /(^|: )No connection established/.test(String(details ?? ''));
}

/** The metadata key that carries our error code next to the gRPC status. */
const CODE_METADATA_KEY = 'lr-error-code';
/** Prefix of the other trailing metadata an error may carry (e.g. lr-master-address with NOT_MASTER). */
const DETAIL_METADATA_PREFIX = 'lr-';

/** Server side: any thrown error becomes a gRPC status carrying our stable code. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const e = isReplicatorError(err)
    ? err
    : new ReplicatorError(ErrorCode.INTERNAL, `internal error: ${(err as Error)?.message ?? String(err)}`);
  const metadata = new grpc.Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  for (const [name, value] of Object.entries(e.details)) metadata.set(DETAIL_METADATA_PREFIX + kebab(name), value);
  return { code: GRPC_STATUS[e.code], details: e.message, metadata };
}

/**
 * Client side: a failed call becomes a ReplicatorError. Our own servers send the code in
 * metadata; transport failures (no server, deadline) are mapped from the status, naming
 * the peer so the user knows what was unreachable.
 */
export function fromServiceError(err: unknown, peer: { role: 'master' | 'follower'; address: string; write?: boolean }): ReplicatorError {
  if (isReplicatorError(err)) return err;
  const se = err as Partial<grpc.ServiceError>;
  const sent = se.metadata?.get(CODE_METADATA_KEY)?.[0];
  if (typeof sent === 'string' && sent in GRPC_STATUS) {
    const details: Record<string, string> = {};
    for (const [key, values] of Object.entries(se.metadata?.getMap() ?? {})) {
      if (key.startsWith(DETAIL_METADATA_PREFIX) && key !== CODE_METADATA_KEY) details[camel(key.slice(DETAIL_METADATA_PREFIX.length))] = String(values);
    }
    return new ReplicatorError(sent as ErrorCode, se.details ?? String(err), { cause: err, details });
  }
  const unavailable = peer.role === 'master' ? ErrorCode.MASTER_UNAVAILABLE : ErrorCode.FOLLOWER_UNAVAILABLE;
  // A Write that failed in transport may have reached the master and committed before the
  // answer was lost: the caller must know before it retries (a blind retry can write twice).
  const outcome = peer.write ? `; ${WRITE_OUTCOME_UNKNOWN}` : '';
  switch (se.code) {
    case grpc.status.UNAVAILABLE: {
      const reason = lastConnectionError(se.details);
      const tlsHint = tlsFailureHint(se.details);
      if (tlsHint) return new ReplicatorError(ErrorCode.TLS_FAILED, `TLS with the ${peer.role} at ${peer.address} failed: ${reason}; ${tlsHint}`, { cause: err });
      const hint = /Failed to connect/i.test(reason) ? ' (it closed the connection: a TLS/plaintext mismatch, or a client certificate it does not accept?)' : '';
      // A Write that never left: `sent: no`, so a writer that knows where the master went may send it there.
      if (peer.write && neverSent(se.details)) {
        return new ReplicatorError(unavailable, `${peer.role} at ${peer.address} is unavailable: ${reason}${hint}; ${WRITE_NOT_SENT}`, { cause: err, details: { sent: 'no' } });
      }
      return new ReplicatorError(unavailable, `${peer.role} at ${peer.address} is unavailable: ${reason}${hint}${outcome}`, { cause: err });
    }
    case grpc.status.UNAUTHENTICATED:
      return new ReplicatorError(ErrorCode.UNAUTHENTICATED, `${peer.role} at ${peer.address} refused the call: ${se.details}`, { cause: err });
    case grpc.status.PERMISSION_DENIED:
      return new ReplicatorError(ErrorCode.PERMISSION_DENIED, `${peer.role} at ${peer.address} refused the call: ${se.details}`, { cause: err });
    case grpc.status.DEADLINE_EXCEEDED:
      return new ReplicatorError(ErrorCode.DEADLINE_EXCEEDED, `${peer.role} at ${peer.address} did not answer in time${outcome}`, { cause: err });
    case grpc.status.RESOURCE_EXHAUSTED:
      return new ReplicatorError(ErrorCode.BATCH_TOO_LARGE, `${peer.role} at ${peer.address} refused the message: ${se.details}`, { cause: err });
    default:
      return new ReplicatorError(ErrorCode.INTERNAL, `${peer.role} at ${peer.address} failed: ${se.details ?? String(err)}`, { cause: err });
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
