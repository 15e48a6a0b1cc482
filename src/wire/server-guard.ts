import * as grpc from '@grpc/grpc-js';
import { authorize, type TokenTable } from './auth.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { toServiceError } from './grpc-status.js';
import { SERVER_OPTIONS } from './grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { hardenService, RefusedRequest } from './request-decoding.js';
import { withEncodedResponses } from './subscribe-encoder.js';

/**
 * The one gate every call of every service passes, on the master and on followers:
 *
 * - token check (when the server has a token table), before the request is even read;
 * - requests that failed to decode (see request-decoding.ts) get INVALID_ARGUMENT
 *   [MALFORMED_REQUEST] with the decoder's reason instead of grpc-js's bare INTERNAL;
 * - a unary or server-streaming call whose request stream ends before one whole message
 *   arrived (a truncated or empty stream) gets MALFORMED_REQUEST;
 * - every call that ends in an error status is logged exactly once, whoever produced the
 *   status: a handler, this guard, or grpc-js itself (oversize message, deadline).
 *
 * Nothing here touches stored data: refused calls never reach a handler.
 */
export function guardInterceptor(tokens: TokenTable | undefined, log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    const path = method.path;
    const peer = call.getPeer();
    let statusSent = false;
    let clientGone = false;
    let messages = 0;
    let principal: string | undefined;
    let followerId: unknown;

    // grpc-js sends some statuses (message over the size limit, deadline, failed
    // decompression) straight from its innermost call object, bypassing interceptor
    // responders. Wrapping that object's sendStatus is the one place where every status
    // of the call can be seen, so it is where calls are logged. This interceptor must
    // therefore be the first one (createServer installs it so).
    const sendStatus = call.sendStatus.bind(call);
    call.sendStatus = (status) => {
      if (!statusSent && !clientGone) {
        statusSent = true;
        logStatus(log, status, { method: path.slice(1), peer, principal, followerId, clientCert: clientCertOf(call) });
      }
      sendStatus(status);
    };
    const refuse = (error: ReplicatorError) => call.sendStatus(toServiceError(error) as CallStatus);

    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, nextMetadata) {
            const decision = authorize(tokens, path, metadata);
            principal = decision.principal?.name;
            if (!decision.ok) return refuse(decision.error);
            nextMetadata(metadata);
          },
          onReceiveMessage(message, nextMessage) {
            if (message instanceof RefusedRequest) return refuse(message.error);
            messages++;
            if (!method.requestStream && messages > 1) {
              return refuse(new ReplicatorError(ErrorCode.MALFORMED_REQUEST, `${path.slice(1)} takes exactly one request message`));
            }
            if (typeof message?.followerId === 'number') followerId = message.followerId;
            nextMessage(message);
          },
          onReceiveHalfClose(nextHalfClose) {
            if (!method.requestStream && messages === 0) {
              return refuse(
                new ReplicatorError(ErrorCode.MALFORMED_REQUEST, 'the request stream ended before a complete request message arrived (truncated or empty)'),
              );
            }
            nextHalfClose();
          },
          onCancel() {
            if (!statusSent) clientGone = true;
          },
        });
      },
    });
  };
}

const SEVERE = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.DATA_LOSS]);

type CallStatus = Parameters<grpc.ServerInterceptingCallInterface['sendStatus']>[0];

function logStatus(log: Logger, status: CallStatus, fields: Record<string, unknown>): void {
  if (status.code === grpc.status.OK) return;
  const code = status.metadata?.get('lr-error-code')[0];
  const details = String(status.details ?? '');
  const entry = {
    ...fields,
    status: grpc.status[status.code],
    code: typeof code === 'string' ? code : undefined,
    details: details.length > 300 ? `${details.slice(0, 300)}…` : details,
  };
  if (SEVERE.has(status.code)) log.error(entry, 'request failed');
  else log.warn(entry, 'request refused');
}

function clientCertOf(call: grpc.ServerInterceptingCallInterface): string | undefined {
  try {
    const cert = call.getAuthContext().sslPeerCertificate;
    const cn = cert?.subject?.CN;
    return typeof cn === 'string' ? cn : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A grpc-js server whose services all decode requests strictly, through hardenService, and
 * whose Master.Subscribe streams take pre-encoded responses (withEncodedResponses).
 */
class GuardedServer extends grpc.Server {
  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    super.addService(withEncodedResponses(hardenService(service)), implementation);
  }
}

/** The server every node uses: transport options, the guard (first), strict hardened decoding. */
export function createServer(tokens: TokenTable | undefined, log: Logger): grpc.Server {
  return new GuardedServer({ ...SERVER_OPTIONS, interceptors: [guardInterceptor(tokens, log)] });
}
