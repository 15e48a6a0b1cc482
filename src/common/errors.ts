import * as grpc from '@grpc/grpc-js';
import { lastConnectionError, tlsFailureHint } from './transport-errors.js';

/**
 * Stable error codes. Messages may change between versions; codes do not.
 * Every code maps to exactly one gRPC status (GRPC_STATUS) and one CLI exit code
 * (EXIT_CODE); both tables live here and nowhere else.
 */
export const ErrorCode = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  EMPTY_KEY: 'EMPTY_KEY',
  KEY_TOO_LARGE: 'KEY_TOO_LARGE',
  VALUE_TOO_LARGE: 'VALUE_TOO_LARGE',
  BATCH_TOO_LARGE: 'BATCH_TOO_LARGE',
  INVALID_FOLLOWER_ID: 'INVALID_FOLLOWER_ID',
  INVALID_ADDRESS: 'INVALID_ADDRESS',
  KEY_NOT_FOUND: 'KEY_NOT_FOUND',
  STORE_NOT_FOUND: 'STORE_NOT_FOUND',
  DATA_DIR_LOCKED: 'DATA_DIR_LOCKED',
  ADDRESS_IN_USE: 'ADDRESS_IN_USE',
  MASTER_UNAVAILABLE: 'MASTER_UNAVAILABLE',
  FOLLOWER_UNAVAILABLE: 'FOLLOWER_UNAVAILABLE',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  LOG_TRIMMED: 'LOG_TRIMMED',
  FOLLOWER_AHEAD: 'FOLLOWER_AHEAD',
  HISTORY_MISMATCH: 'HISTORY_MISMATCH',
  DUPLICATE_FOLLOWER: 'DUPLICATE_FOLLOWER',
  SEQ_GAP: 'SEQ_GAP',
  CORRUPT_ENTRY: 'CORRUPT_ENTRY',
  STORE_FAILED: 'STORE_FAILED',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  MALFORMED_REQUEST: 'MALFORMED_REQUEST',
  NOT_A_DATA_DIR: 'NOT_A_DATA_DIR',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  TLS_FAILED: 'TLS_FAILED',
  NOT_MASTER: 'NOT_MASTER',
  NOT_ENOUGH_FOLLOWERS: 'NOT_ENOUGH_FOLLOWERS',
  REPLICATION_TIMEOUT: 'REPLICATION_TIMEOUT',
  SEQ_NOT_APPLIED: 'SEQ_NOT_APPLIED',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const GRPC_STATUS: Record<ErrorCode, grpc.status> = {
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
  INTERNAL: grpc.status.INTERNAL,
};

/** Process exit codes of the CLIs, documented in the README. */
export const ExitCode = {
  OK: 0,
  NOT_FOUND: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
  STORE: 4,
  REFUSED: 5,
  NOT_AUTHORIZED: 6,
  /** The write is committed on the master but fewer followers than asked acknowledged it in time. */
  NOT_REPLICATED: 7,
  INTERNAL: 70,
} as const;

const EXIT_CODE: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: ExitCode.USAGE,
  EMPTY_KEY: ExitCode.USAGE,
  KEY_TOO_LARGE: ExitCode.USAGE,
  VALUE_TOO_LARGE: ExitCode.USAGE,
  BATCH_TOO_LARGE: ExitCode.USAGE,
  INVALID_FOLLOWER_ID: ExitCode.USAGE,
  INVALID_ADDRESS: ExitCode.USAGE,
  KEY_NOT_FOUND: ExitCode.NOT_FOUND,
  STORE_NOT_FOUND: ExitCode.STORE,
  DATA_DIR_LOCKED: ExitCode.STORE,
  ADDRESS_IN_USE: ExitCode.UNAVAILABLE,
  MASTER_UNAVAILABLE: ExitCode.UNAVAILABLE,
  FOLLOWER_UNAVAILABLE: ExitCode.UNAVAILABLE,
  DEADLINE_EXCEEDED: ExitCode.UNAVAILABLE,
  LOG_TRIMMED: ExitCode.REFUSED,
  FOLLOWER_AHEAD: ExitCode.REFUSED,
  HISTORY_MISMATCH: ExitCode.REFUSED,
  DUPLICATE_FOLLOWER: ExitCode.REFUSED,
  SEQ_GAP: ExitCode.INTERNAL,
  CORRUPT_ENTRY: ExitCode.STORE,
  STORE_FAILED: ExitCode.STORE,
  SHUTTING_DOWN: ExitCode.UNAVAILABLE,
  MALFORMED_REQUEST: ExitCode.USAGE,
  NOT_A_DATA_DIR: ExitCode.STORE,
  UNAUTHENTICATED: ExitCode.NOT_AUTHORIZED,
  PERMISSION_DENIED: ExitCode.NOT_AUTHORIZED,
  TLS_FAILED: ExitCode.NOT_AUTHORIZED,
  NOT_MASTER: ExitCode.REFUSED,
  NOT_ENOUGH_FOLLOWERS: ExitCode.UNAVAILABLE,
  REPLICATION_TIMEOUT: ExitCode.NOT_REPLICATED,
  SEQ_NOT_APPLIED: ExitCode.UNAVAILABLE,
  INTERNAL: ExitCode.INTERNAL,
};

/** The metadata key that carries our error code next to the gRPC status. */
const CODE_METADATA_KEY = 'lr-error-code';
/** Prefix of the other trailing metadata an error may carry (e.g. lr-master-address with NOT_MASTER). */
const DETAIL_METADATA_PREFIX = 'lr-';

export class ReplicatorError extends Error {
  readonly code: ErrorCode;
  /** Machine-readable details, sent as `lr-<name>` trailing metadata (e.g. masterAddress → lr-master-address). */
  readonly details: Record<string, string>;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, string> }) {
    super(message, options);
    this.name = 'ReplicatorError';
    this.code = code;
    this.details = options?.details ?? {};
  }
  get grpcStatus(): grpc.status {
    return GRPC_STATUS[this.code];
  }
  get exitCode(): number {
    return EXIT_CODE[this.code];
  }
}

export function isReplicatorError(err: unknown, code?: ErrorCode): err is ReplicatorError {
  return err instanceof ReplicatorError && (code === undefined || err.code === code);
}

/** Server side: any thrown error becomes a gRPC status carrying our stable code. */
export function toServiceError(err: unknown): Partial<grpc.StatusObject> {
  const e = isReplicatorError(err)
    ? err
    : new ReplicatorError(ErrorCode.INTERNAL, `internal error: ${(err as Error)?.message ?? String(err)}`);
  const metadata = new grpc.Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  for (const [name, value] of Object.entries(e.details)) metadata.set(DETAIL_METADATA_PREFIX + kebab(name), value);
  return { code: e.grpcStatus, details: e.message, metadata };
}

/**
 * Client side: a failed call becomes a ReplicatorError. Our own servers send the code in
 * metadata; transport failures (no server, deadline) are mapped from the status, naming
 * the peer so the user knows what was unreachable.
 */
export function fromServiceError(err: unknown, peer: { role: 'master' | 'follower'; address: string }): ReplicatorError {
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
  switch (se.code) {
    case grpc.status.UNAVAILABLE: {
      const reason = lastConnectionError(se.details);
      const tlsHint = tlsFailureHint(se.details);
      if (tlsHint) return new ReplicatorError(ErrorCode.TLS_FAILED, `TLS with the ${peer.role} at ${peer.address} failed: ${reason}; ${tlsHint}`, { cause: err });
      const hint = /Failed to connect/i.test(reason) ? ' (it closed the connection: a TLS/plaintext mismatch, or a client certificate it does not accept?)' : '';
      return new ReplicatorError(unavailable, `${peer.role} at ${peer.address} is unavailable: ${reason}${hint}`, { cause: err });
    }
    case grpc.status.UNAUTHENTICATED:
      return new ReplicatorError(ErrorCode.UNAUTHENTICATED, `${peer.role} at ${peer.address} refused the call: ${se.details}`, { cause: err });
    case grpc.status.PERMISSION_DENIED:
      return new ReplicatorError(ErrorCode.PERMISSION_DENIED, `${peer.role} at ${peer.address} refused the call: ${se.details}`, { cause: err });
    case grpc.status.DEADLINE_EXCEEDED:
      return new ReplicatorError(ErrorCode.DEADLINE_EXCEEDED, `${peer.role} at ${peer.address} did not answer in time`, { cause: err });
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
