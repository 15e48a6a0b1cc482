import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { MAX_GRPC_MESSAGE_BYTES } from '../common/limits.js';

/**
 * Server options. Keepalive pings let the master notice a follower whose host or link
 * died (no FIN, no RST) within KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS.
 */
const KEEPALIVE_TIME_MS = 2_000;
const KEEPALIVE_TIMEOUT_MS = 3_000;
/** A larger HTTP/2 window lets a follower receive big batches without stalling on WINDOW_UPDATE round trips. */
const FLOW_CONTROL_WINDOW_BYTES = 4 * 1024 * 1024;

// grpc-js prints its own errors to stderr; ours already say what failed, in one line.
// GRPC_VERBOSITY / GRPC_TRACE still turn its diagnostics on for debugging.
if (!process.env.GRPC_VERBOSITY && !process.env.GRPC_TRACE) grpc.setLogVerbosity(grpc.logVerbosity.NONE);

export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_GRPC_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
};

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_GRPC_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_GRPC_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
  // Reconnect quickly after a master restart; our own loop adds jittered backoff on top.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
};

export function deadlineIn(ms: number): Date {
  return new Date(Date.now() + ms);
}

/** Binds and starts a server; resolves to the bound address (with the real port if 0 was asked). */
export function bindServer(server: grpc.Server, address: string, creds = grpc.ServerCredentials.createInsecure()): Promise<string> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => {
      if (err) {
        const inUse = /EADDRINUSE|address already in use/i.test(err.message);
        reject(
          new ReplicatorError(
            inUse ? ErrorCode.ADDRESS_IN_USE : ErrorCode.INVALID_ADDRESS,
            inUse ? `address ${address} is already in use` : `cannot listen on ${address}: ${err.message}`,
            { cause: err },
          ),
        );
        return;
      }
      const host = address.slice(0, address.lastIndexOf(':'));
      resolve(`${host}:${port}`);
    });
  });
}

/** Graceful shutdown with a bound: open streams are cancelled after graceMs. */
export function shutdownServer(server: grpc.Server, graceMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Plaintext channel credentials (secured channels come from security.ts channelSetup). */
export function credentials(): grpc.ChannelCredentials {
  return grpc.credentials.createInsecure();
}
