import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { toServiceError } from '../wire/grpc-status.js';
import type { MasterServiceHandlers } from '../wire/master-handlers.js';
import type { FollowerSelf } from '../wire/generated/levelreplicator/v1/FollowerSelf.js';

/**
 * Followers are read-only. A follower serves the Master service only to refuse every
 * call with NOT_MASTER, naming the master's address in the message and in the
 * `lr-master-address` trailing metadata, so a client pointed at a follower by mistake
 * is told where to go instead of getting UNIMPLEMENTED. Nothing is ever written.
 * The one exception is Status, when `self` is given: a follower answers it with its own
 * view (role "follower"), as Redis's INFO replication works on a replica.
 */
export function readOnlyMasterHandlers(followerId: number, masterAddress: string, onRefuse: () => void, self?: () => FollowerSelf): MasterServiceHandlers {
  const refusal = (what: string) => {
    onRefuse();
    return toServiceError(
      new ReplicatorError(ErrorCode.NOT_MASTER, `follower ${followerId} is read-only and cannot ${what}; the master is at ${masterAddress}`, {
        details: { masterAddress },
      }),
    ) as grpc.ServiceError;
  };
  return {
    Write: (_call, callback) => callback(refusal('take writes')),
    Ack: (_call, callback) => callback(refusal('take acknowledgements')),
    Status: (_call, callback) => {
      if (!self) return callback(refusal('report replication status'));
      callback(null, { role: 'follower', self: self(), masterTimeMs: '0' });
    },
    DropSlot: (_call, callback) => callback(refusal('drop replication slots (they live on the master)')),
    Subscribe: (call) => call.emit('error', refusal('stream its log (followers do not cascade)')),
  };
}
