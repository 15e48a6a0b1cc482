import type * as grpc from '@grpc/grpc-js';
import { fromServiceError } from './errors.js';
import { CHANNEL_OPTIONS, credentials, deadlineIn } from './grpc-transport.js';
import type { MasterClient } from './generated/levelreplicator/v1/Master.js';
import type { StoreClient } from './generated/levelreplicator/v1/Store.js';
import { replicatorProto } from './proto.js';

export interface Peer {
  role: 'master' | 'follower';
  address: string;
}

/**
 * One unary call with a deadline; failures become ReplicatorErrors naming the peer.
 * `start` issues the call: callUnary<Res>((options, cb) => client.Method(req, options, cb), ...).
 */
export function callUnary<Res>(
  start: (options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => unknown,
  timeoutMs: number,
  peer: Peer,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    start({ deadline: deadlineIn(timeoutMs) }, (err, res) => {
      if (err) reject(fromServiceError(err, peer));
      else resolve(res!);
    });
  });
}

export function masterClient(address: string): MasterClient {
  const proto = replicatorProto();
  return new proto.Master(address, credentials(), CHANNEL_OPTIONS);
}

export function storeClient(address: string): StoreClient {
  const proto = replicatorProto();
  return new proto.Store(address, credentials(), CHANNEL_OPTIONS);
}
