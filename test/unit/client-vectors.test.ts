import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { MAX_GRPC_MESSAGE_BYTES, MAX_MUTATIONS_PER_WRITE, MAX_REQUEST_BYTES } from '../../src/common/limits.js';
import { PairHasher } from '../../src/storage/digest.js';
import { chainsFrom, decodeEntry, encodedEntrySize, encodeEntry, MutationKind, type Mutation } from '../../src/wire/entry-codec.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { strictRequestDecoder } from '../../src/wire/request-decoding.js';
import type { WriteRequestDecoder } from '../../src/wire/write-request-decoder.js';

/**
 * The test vectors README "Writing your own client" gives to client authors. The hex
 * strings here and there are the same: if the entry format, the checksum chaining or the
 * digest framing changes, this fails, and the README must change with it.
 */

// README: seq 42, commit time 1700000000000 ms, one put of "key" = "value", previous checksum 1c2d3e4f.
const ENTRY_HEX = '01000000000000002a0000018bcfe568000000000100000000036b65790000000576616c7565177b4b56';
const ENTRY_CHECKSUM = 0x177b4b56;
const PREV_CHECKSUM = 0x1c2d3e4f;
// README: the pairs ("a", "1") and ("bc", "") in key order.
const DIGEST_HEX = 'e255f6055bdf3fc95624f539aebddd00a6d1937909934fbc3304ebb829aa82db';

describe('client test vectors (README "Writing your own client")', () => {
  it('encodes the documented entry to the documented bytes and chained checksum', () => {
    const entry = encodeEntry(42n, 1_700_000_000_000, [{ kind: MutationKind.PUT, key: Buffer.from('key'), value: Buffer.from('value') }], PREV_CHECKSUM);
    assert.equal(entry.toString('hex'), ENTRY_HEX);
    assert.equal(entry.readUInt32BE(entry.length - 4), ENTRY_CHECKSUM);
    // The checksum is plain CRC-32 (zlib's, as Python's zlib.crc32) of every byte before it, seeded with the previous checksum.
    assert.equal(zlib.crc32(entry.subarray(0, entry.length - 4), PREV_CHECKSUM), ENTRY_CHECKSUM);
    assert.ok(chainsFrom(entry, PREV_CHECKSUM));
    assert.ok(!chainsFrom(entry, 0), 'the seed matters: the same bytes do not chain from genesis');
    const decoded = decodeEntry(Buffer.from(ENTRY_HEX, 'hex'));
    assert.equal(decoded.seq, 42n);
    assert.equal(decoded.commitTimeMs, 1_700_000_000_000);
    assert.equal(decoded.checksum, ENTRY_CHECKSUM);
    assert.deepEqual(
      decoded.mutations.map((m) => [m.kind, m.key.toString(), m.value?.toString()]),
      [[MutationKind.PUT, 'key', 'value']],
    );
  });

  it('hashes the documented pairs to the documented digest, each length a big-endian u32', () => {
    const h = new PairHasher();
    h.update(Buffer.from('a'), Buffer.from('1'));
    h.update(Buffer.from('bc'), Buffer.alloc(0));
    assert.equal(h.digest(), DIGEST_HEX);
    // The same, framed by hand as the README spells it out.
    const framed = Buffer.from('00000001' + '61' + '00000001' + '31' + '00000002' + '6263' + '00000000', 'hex');
    assert.equal(crypto.createHash('sha256').update(framed).digest('hex'), DIGEST_HEX);
  });

  it('refuses an empty WriteRequest (and a write without mutations) with INVALID_ARGUMENT', () => {
    const method = replicatorProto().Master.service.Write;
    const decode = strictRequestDecoder(method) as WriteRequestDecoder;
    const bytes = method.requestSerialize({ writes: [] }) as Buffer;
    assert.equal(bytes.length, 0, 'an empty WriteRequest is zero bytes on the wire');
    assert.throws(
      () => decode(bytes).prepared(),
      (err: unknown) => isReplicatorError(err) && err.code === ErrorCode.INVALID_ARGUMENT && err.message === 'a write request needs at least one write',
    );
    // README: a write without mutations likewise.
    assert.throws(
      () => decode(method.requestSerialize({ writes: [{ mutations: [] }] }) as Buffer).prepared(),
      (err: unknown) => isReplicatorError(err) && err.code === ErrorCode.INVALID_ARGUMENT && err.message === 'write 0 has no mutations',
    );
  });

  it('the largest entry is the documented size, over grpcio\'s 4 MiB default and under our 32 MiB cap', () => {
    // One write of MAX_MUTATIONS_PER_WRITE puts carrying MAX_REQUEST_BYTES of keys and values.
    const each = MAX_REQUEST_BYTES / MAX_MUTATIONS_PER_WRITE;
    const shape: Mutation[] = Array.from({ length: MAX_MUTATIONS_PER_WRITE }, (_, i) => {
      const size = Math.floor(each * (i + 1)) - Math.floor(each * i);
      return { kind: MutationKind.PUT, key: Buffer.alloc(1), value: Buffer.alloc(size - 1) };
    });
    const size = encodedEntrySize(shape);
    assert.equal(size, 16_867_241); // README: 16 MiB + 90,025 bytes
    assert.ok(size > 4 * 1024 * 1024);
    assert.equal(MAX_GRPC_MESSAGE_BYTES, 32 * 1024 * 1024); // README: set the receive limit to 32 MiB
  });
});
