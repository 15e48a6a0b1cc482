import type * as grpc from '@grpc/grpc-js';

/** The longest a server waits inside one call whose client set no deadline. */
export const MAX_SERVER_WAIT_MS = 60_000;

/**
 * How long a handler may wait inside a call and still answer before the client's
 * deadline: the time left minus a margin for the answer to travel (10% of what is left,
 * between 20 and 250 ms). A waiting handler answers with what it has rather than let
 * the client see a bare DEADLINE_EXCEEDED that says nothing about what happened.
 */
export function waitBudgetMs(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getDeadline'>, capMs = MAX_SERVER_WAIT_MS, now = Date.now()): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  if (!Number.isFinite(at)) return capMs;
  const left = at - now;
  const margin = Math.min(250, Math.max(20, left * 0.1));
  return Math.max(0, Math.min(capMs, left - margin));
}
