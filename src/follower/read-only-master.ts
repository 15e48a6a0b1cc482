import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { toServiceError } from '../wire/grpc-status.js';
import type { MasterServiceHandlers } from '../wire/master-handlers.js';
import type { StatusResponse } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import type { Downstream } from './downstream.js';

/**
 * Followers are read-only. A follower serves the Master service only to refuse every
 * call with NOT_MASTER, naming the master's address in the message and in the
 * `lr-master-address` trailing metadata, so a client pointed at a follower by mistake
 * is told where to go instead of getting UNIMPLEMENTED. Nothing is ever written.
 * The one exception is Status, when `status` is given: a follower answers it with its own
 * view (role "follower", self-status.ts), as Redis's INFO replication works on a replica.
 * With `downstream` (chained followers), Subscribe and Ack are served by it from the
 * follower's own log, and Status lists its downstream followers too.
 */
export function readOnlyMasterHandlers(
  followerId: number,
  /** The master as the follower knows it at the time of the call. */
  master: () => string,
  onRefuse: () => void,
  status?: () => StatusResponse,
  downstream?: () => Downstream | undefined,
): MasterServiceHandlers {
  const refusal = (what: string) => {
    onRefuse();
    const masterAddress = master();
    return toServiceError(
      new ReplicatorError(ErrorCode.NOT_MASTER, `follower ${followerId} is read-only and cannot ${what}; the master is at ${masterAddress}`, {
        details: { masterAddress },
      }),
    ) as grpc.ServiceError;
  };
  return {
    Write: (_call, callback) => callback(refusal('take writes')),
    Ack: (call, callback) => {
      const d = downstream?.();
      if (d) return d.ack(call, callback);
      callback(refusal('take acknowledgements'));
    },
    Status: (_call, callback) => {
      if (!status) return callback(refusal('report replication status'));
      const d = downstream?.();
      if (!d) return callback(null, status());
      const me = status();
      d.status().then(
        (s) => callback(null, { ...me, ...s } satisfies StatusResponse),
        (err) => callback(toServiceError(err) as grpc.ServiceError),
      );
    },
    DropSlot: (_call, callback) => callback(refusal('drop replication slots (they live on the master)')),
    Subscribe: (call) => {
      const d = downstream?.();
      if (d) return d.subscribe(call);
      call.emit('error', refusal('stream its log (this follower serves no downstream followers)'));
    },
  };
}
