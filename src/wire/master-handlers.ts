import type * as grpc from '@grpc/grpc-js';
import type { MasterHandlers } from './generated/levelreplicator/v1/Master.js';
import type { SubscribeRequest__Output } from './generated/levelreplicator/v1/SubscribeRequest.js';
import type { WriteResponse } from './generated/levelreplicator/v1/WriteResponse.js';
import type { SubscribeResponseOut } from './subscribe-encoder.js';
import type { DecodedWriteRequest } from './write-request-decoder.js';

/**
 * The Master service as every server of ours serves it (server-guard.ts installs the
 * codecs), which is where it differs from the generated MasterHandlers: a Write request
 * arrives decoded, checked and packed by write-request-decoder.ts, and a Subscribe stream
 * takes responses already encoded by subscribe-encoder.ts as well as messages.
 */
export interface MasterServiceHandlers extends grpc.UntypedServiceImplementation {
  Write: grpc.handleUnaryCall<DecodedWriteRequest, WriteResponse>;
  Subscribe: grpc.handleServerStreamingCall<SubscribeRequest__Output, SubscribeResponseOut>;
  Ack: MasterHandlers['Ack'];
  Status: MasterHandlers['Status'];
  DropSlot: MasterHandlers['DropSlot'];
}
