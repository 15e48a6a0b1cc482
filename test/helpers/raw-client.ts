import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { replicatorProto } from '../../src/wire/proto.js';

/**
 * A generic grpc-js client that sends bytes exactly as given (identity serializers), so
 * malformed, oversize or fuzzed requests reach the server undecoded.
 */
export class RawClient {
  readonly client: grpc.Client;

  constructor(address: string, credentials = grpc.credentials.createInsecure(), options: grpc.ChannelOptions = {}) {
    // No client-side size cap: the server's own limit is what is under test.
    this.client = new grpc.Client(address, credentials, { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1, ...options });
  }

  unary(path: string, body: Buffer, { timeoutMs = 15_000, metadata = new grpc.Metadata() } = {}): Promise<{ err: grpc.ServiceError | null; res?: Buffer }> {
    return new Promise((resolve) => {
      this.client.makeUnaryRequest<Buffer, Buffer>(
        path,
        (b) => b,
        (b) => b,
        body,
        metadata,
        { deadline: Date.now() + timeoutMs },
        (err, res) => resolve({ err, res }),
      );
    });
  }

  /** A server stream: resolves with the messages received until it ended or failed, or maxMessages arrived. */
  stream(path: string, body: Buffer, { timeoutMs = 15_000, maxMessages = 1 } = {}): Promise<{ err: grpc.ServiceError | null; messages: Buffer[] }> {
    return new Promise((resolve) => {
      const messages: Buffer[] = [];
      let done = false;
      const call = this.client.makeServerStreamRequest<Buffer, Buffer>(path, (b) => b, (b) => b, body, new grpc.Metadata(), {
        deadline: Date.now() + timeoutMs,
      });
      const finish = (err: grpc.ServiceError | null) => {
        if (done) return;
        done = true;
        call.cancel();
        resolve({ err, messages });
      };
      call.on('data', (m: Buffer) => {
        messages.push(m);
        if (messages.length >= maxMessages) finish(null);
      });
      call.on('error', (err: grpc.ServiceError) => finish(err));
      call.on('end', () => finish(null));
    });
  }

  close(): void {
    this.client.close();
  }
}

type Services = ReturnType<typeof replicatorProto>;
type MasterMethod = keyof Services['Master']['service'];
type StoreMethod = keyof Services['Store']['service'];

/** Valid request bytes, encoded exactly as our own clients encode them. */
export function encodeMaster(method: MasterMethod, request: object): Buffer {
  return (replicatorProto().Master.service[method].requestSerialize as (r: object) => Buffer)(request);
}
export function encodeStore(method: StoreMethod, request: object): Buffer {
  return (replicatorProto().Store.service[method].requestSerialize as (r: object) => Buffer)(request);
}
export function decodeMaster(method: MasterMethod, bytes: Buffer): unknown {
  return replicatorProto().Master.service[method].requestDeserialize(bytes);
}
export function decodeMasterResponse(method: MasterMethod, bytes: Buffer): unknown {
  return replicatorProto().Master.service[method].responseDeserialize(bytes);
}

export const MASTER = {
  Write: '/levelreplicator.v1.Master/Write',
  Subscribe: '/levelreplicator.v1.Master/Subscribe',
  Ack: '/levelreplicator.v1.Master/Ack',
  Status: '/levelreplicator.v1.Master/Status',
} as const;
export const STORE = {
  Get: '/levelreplicator.v1.Store/Get',
  Digest: '/levelreplicator.v1.Store/Digest',
} as const;

/** gRPC length-prefixed framing of one message. */
export function frame(body: Buffer, declaredLength = body.length): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([header, body]);
}

/**
 * Sends raw HTTP/2 DATA for one gRPC call and returns the grpc-status the server answers
 * with (from trailers or a trailers-only response). `reset` aborts the stream instead of
 * ending it, as a client that dies mid-request would.
 */
export function rawHttp2Call(address: string, path: string, data: Buffer, { reset = false, timeoutMs = 15_000 } = {}): Promise<{ status?: number; code?: string; message?: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.on('error', reject);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer to the raw call of ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    const result: { status?: number; code?: string; message?: string } = {};
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) {
        result.status = Number(h['grpc-status']);
        result.code = h['lr-error-code'] as string | undefined;
        result.message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      }
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => {});
    req.on('error', () => {});
    const done = () => {
      clearTimeout(timer);
      session.close();
      resolve(result);
    };
    req.on('close', done);
    if (reset) {
      req.write(data, () => {
        req.close(http2.constants.NGHTTP2_CANCEL);
      });
    } else {
      req.end(data);
    }
  });
}
