/**
 * Stable error codes. Messages may change between versions; codes do not.
 * This module is the domain's vocabulary of failures and imports no transport: every code
 * maps to exactly one gRPC status in src/wire/grpc-status.ts and one CLI exit code in
 * src/tools/exit-codes.ts, and those tables live there and nowhere else.
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
  SLOT_NOT_FOUND: 'SLOT_NOT_FOUND',
  FOLLOWER_CONNECTED: 'FOLLOWER_CONNECTED',
  SLOT_DROPPED: 'SLOT_DROPPED',
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
  STALE_EPOCH: 'STALE_EPOCH',
  FOLLOW_LOOP: 'FOLLOW_LOOP',
  PROMOTION_REFUSED: 'PROMOTION_REFUSED',
  WRITES_PAUSED: 'WRITES_PAUSED',
  EPOCH_CHANGED: 'EPOCH_CHANGED',
  NO_LEASE: 'NO_LEASE',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

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
}

export function isReplicatorError(err: unknown, code?: ErrorCode): err is ReplicatorError {
  return err instanceof ReplicatorError && (code === undefined || err.code === code);
}
