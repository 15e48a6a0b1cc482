/**
 * Size limits, enforced by the master before anything is written and documented in the
 * README. A key or value at the limit is accepted; one byte more is refused.
 */
export const MAX_KEY_BYTES = 64 * 1024;
export const MAX_VALUE_BYTES = 1024 * 1024;
/** Mutations in one atomic write (one seq). */
export const MAX_MUTATIONS_PER_WRITE = 10_000;
/** Writes (seqs) in one Write request. */
export const MAX_WRITES_PER_REQUEST = 10_000;
/**
 * Mutations in one Write request, all writes together. Counted as the request is read and
 * refused the moment the count passes, so a message of millions of tiny mutations is
 * refused cheaply.
 */
export const MAX_MUTATIONS_PER_REQUEST = 100_000;
/** Key and value bytes in one Write request. */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** gRPC message cap, above the request cap so oversize requests get our own clear error. */
export const MAX_GRPC_MESSAGE_BYTES = 32 * 1024 * 1024;
