import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, credentials, deadlineIn } from '../../wire/grpc-transport.js';
import type { WriteResponse__Output } from '../../wire/generated/levelreplicator/v1/WriteResponse.js';
import { replicatorProto } from '../../wire/proto.js';
import { encodeWriteRequest, type Workload } from './workload.js';

const WRITE_PATH = '/levelreplicator.v1.Master/Write';
const WRITE_DEADLINE_MS = 120_000;
export const PACE_TICK_MS = 5;

/** A Write call that sends pre-encoded request bytes (see encodeWriteRequest). */
class RawWriter {
  private readonly client: grpc.Client;
  private readonly deserialize = replicatorProto().Master.service.Write.responseDeserialize as (b: Buffer) => WriteResponse__Output;

  constructor(address: string) {
    this.client = new grpc.Client(address, credentials(), CHANNEL_OPTIONS);
  }

  write(request: Buffer): Promise<WriteResponse__Output> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(WRITE_PATH, (b: Buffer) => b, this.deserialize, request, { deadline: deadlineIn(WRITE_DEADLINE_MS) }, (err, res) =>
        err ? reject(err) : resolve(res!),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

export interface LoadResult {
  seconds: number;
  /** When the load started (performance.now(), ms). */
  startedAt: number;
  lastSeq: number;
}

/**
 * Writes entries [first, first + count) through `clients` concurrent connections, each
 * sending requests of `batch` writes (one PUT each) and waiting for the acknowledgement
 * before its next request. Resolves when every write is acknowledged.
 */
export async function writeEntries(address: string, w: Workload, opts: { first: number; count: number; batch: number; clients: number }): Promise<LoadResult> {
  const writers = Array.from({ length: opts.clients }, () => new RawWriter(address));
  let next = opts.first;
  const end = opts.first + opts.count;
  let lastSeq = 0;
  const startedAt = performance.now();
  try {
    await Promise.all(
      writers.map(async (writer) => {
        while (next < end) {
          const from = next;
          const n = Math.min(opts.batch, end - from);
          next += n;
          const res = await writer.write(encodeWriteRequest(w, from, n));
          lastSeq = Math.max(lastSeq, Number(res.lastSeq));
        }
      }),
    );
  } finally {
    for (const wr of writers) wr.close();
  }
  return { seconds: (performance.now() - startedAt) / 1000, startedAt, lastSeq };
}

/**
 * Writes at a steady rate for `seconds`: every PACE_TICK_MS a tick sends, in one request,
 * the writes that have come due, without waiting for earlier ones to be acknowledged.
 * (A request per write would measure the cost of gRPC calls on this machine, about 1 ms
 * of CPU each, rather than replication lag.)
 * Resolves with the seq range written once every write is acknowledged.
 */
export async function paceWrites(address: string, w: Workload, opts: { first: number; rate: number; seconds: number }): Promise<{ firstSeq: number; lastSeq: number }> {
  const writer = new RawWriter(address);
  const inFlight: Promise<WriteResponse__Output>[] = [];
  const total = Math.round(opts.rate * opts.seconds);
  let sent = 0;
  const started = performance.now();
  try {
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * opts.rate)) - sent;
      if (due > 0) {
        inFlight.push(writer.write(encodeWriteRequest(w, opts.first + sent, due)));
        sent += due;
      }
      await new Promise((r) => setTimeout(r, PACE_TICK_MS));
    }
    let firstSeq = Infinity;
    let lastSeq = 0;
    for (const r of await Promise.all(inFlight)) {
      firstSeq = Math.min(firstSeq, Number(r.firstSeq));
      lastSeq = Math.max(lastSeq, Number(r.lastSeq));
    }
    return { firstSeq, lastSeq };
  } finally {
    writer.close();
  }
}
