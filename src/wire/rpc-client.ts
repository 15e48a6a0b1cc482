import type { AdminClient } from './generated/levelreplicator/v1/Admin.js';
import type * as grpc from '@grpc/grpc-js';
import { fromServiceError } from './grpc-status.js';
import { deadlineIn } from './grpc-transport.js';
import type { MasterClient } from './generated/levelreplicator/v1/Master.js';
import type { StatusResponse__Output } from './generated/levelreplicator/v1/StatusResponse.js';
import type { StoreClient } from './generated/levelreplicator/v1/Store.js';
import { replicatorProto } from './proto.js';
import { channelSetup, NO_CLIENT_SECURITY, type ClientSecurity } from './security.js';

export interface Peer {
  role: 'master' | 'follower';
  address: string;
  /** The call is a Write: a transport failure then says the write's outcome is unknown. */
  write?: boolean;
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

export function masterClient(address: string, security: ClientSecurity = NO_CLIENT_SECURITY): MasterClient {
  const { credentials, options } = channelSetup(security);
  return new (replicatorProto().Master)(address, credentials, options);
}

/** The Admin service (role changes) of the node at address. */
export function adminClient(address: string, security: ClientSecurity = NO_CLIENT_SECURITY): AdminClient {
  const { credentials, options } = channelSetup(security);
  return new (replicatorProto().Admin)(address, credentials, options);
}

/** tls: what the server speaks, when its endpoint file says so; otherwise the client's choice. */
export function storeClient(address: string, security: ClientSecurity = NO_CLIENT_SECURITY, tls?: boolean): StoreClient {
  const { credentials, options } = channelSetup(security, tls);
  return new (replicatorProto().Store)(address, credentials, options);
}

/**
 * One Status call to the node at address, on a channel of its own (closed after it). A
 * master and a follower both answer Status (a follower with its own view); `role` only
 * words a transport failure (MASTER_UNAVAILABLE or FOLLOWER_UNAVAILABLE).
 */
export async function fetchStatus(
  address: string,
  security: ClientSecurity,
  timeoutMs: number,
  role: Peer['role'] = 'master',
): Promise<StatusResponse__Output> {
  const client = masterClient(address, security);
  try {
    return await callUnary<StatusResponse__Output>((o, cb) => client.Status({}, o, cb), timeoutMs, { role, address });
  } finally {
    client.close();
  }
}
