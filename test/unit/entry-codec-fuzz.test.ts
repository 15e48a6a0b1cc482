import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  chainsFrom,
  decodeEntry,
  encodeEntry,
  entryChecksum,
  entryCommitTimeMs,
  entrySeq,
  GENESIS_CHECKSUM,
  MutationKind,
  type Mutation,
} from '../../src/wire/entry-codec.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { openReplicaStore, type LevelReplicaStore } from '../../src/storage/level-replica-store.js';
import { FUZZ_SEED, fuzzIterations, mutate, Rng } from '../helpers/fuzz.js';

const MUTATIONS: Mutation[] = [
  { kind: MutationKind.PUT, key: Buffer.from('alpha'), value: Buffer.from('one') },
  { kind: MutationKind.DELETE, key: Buffer.from('beta') },
  { kind: MutationKind.PUT, key: Buffer.from([0, 1, 2]), value: Buffer.alloc(0) },
];

/** Runs f; it may return or throw CORRUPT_ENTRY, nothing else (no RangeError, no crash). */
function cleanly<T>(f: () => T, input: Buffer): T | undefined {
  try {
    return f();
  } catch (err) {
    assert.ok(isReplicatorError(err, ErrorCode.CORRUPT_ENTRY), `seed ${FUZZ_SEED}: ${(err as Error)?.name}: ${(err as Error)?.message} for ${input.toString('hex')}`);
    return undefined;
  }
}

describe('entry decoder fuzz', () => {
  const rng = new Rng(FUZZ_SEED);
  const valid = encodeEntry(7n, 1_700_000_000_000, MUTATIONS, 0x1234);

  it('random bytes decode or fail with CORRUPT_ENTRY, never anything else', () => {
    for (let i = 0; i < fuzzIterations(20_000); i++) {
      // Half start like a real entry, so the fuzz gets past the version byte.
      const input = rng.bytes(rng.int(120));
      if (input.length > 0 && rng.next() < 0.5) input[0] = 1;
      const decoded = cleanly(() => decodeEntry(input), input);
      for (const peek of [entrySeq, entryChecksum, entryCommitTimeMs]) cleanly(() => peek(input), input);
      if (decoded) {
        // Whatever decodes re-encodes to the same bytes (before the checksum): no silent misreading.
        const again = encodeEntry(decoded.seq, decoded.commitTimeMs, decoded.mutations, 0);
        assert.equal(again.subarray(0, -4).toString('hex'), input.subarray(0, -4).toString('hex'));
      }
    }
  });

  it('every mutation of a valid entry fails its checksum chain', () => {
    for (let i = 0; i < fuzzIterations(20_000); i++) {
      const input = mutate(rng, valid);
      if (input.equals(valid)) continue;
      cleanly(() => decodeEntry(input), input);
      if (input.length >= 25) assert.equal(chainsFrom(input, 0x1234), false, `seed ${FUZZ_SEED}: ${input.toString('hex')} passed the checksum`);
    }
  });
});

describe('applying fuzzed entries', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lr-fuzz-'));
  let applier: LevelReplicaStore;
  const history = Buffer.alloc(16, 3);
  before(async () => {
    applier = await openReplicaStore(dir, { create: true, sync: false });
    await applier.apply([encodeEntry(1n, 1, MUTATIONS, GENESIS_CHECKSUM)], history);
  });
  after(async () => {
    await applier.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('are refused with a stable code and leave the store unchanged', async () => {
    const rng = new Rng(FUZZ_SEED + 1);
    const next = encodeEntry(2n, 2, [{ kind: MutationKind.PUT, key: Buffer.from('gamma'), value: Buffer.from('three') }], applier.appliedChecksum);
    const digestOf = async () => {
      const view = applier.view();
      try {
        return (await view.digest()).digest;
      } finally {
        await view.close();
      }
    };
    const before = await digestOf();
    let refused = 0;
    for (let i = 0; i < fuzzIterations(2_000); i++) {
      const input = mutate(rng, next);
      if (input.equals(next)) continue;
      await assert.rejects(applier.apply([input], history), (err) => isReplicatorError(err) && ['CORRUPT_ENTRY', 'SEQ_GAP'].includes(err.code));
      refused++;
    }
    assert.ok(refused > 0);
    assert.equal(applier.appliedSeq, 1n);
    assert.equal(await digestOf(), before);
    await applier.apply([next], history); // the genuine entry still applies
    assert.equal(applier.appliedSeq, 2n);
  });
});
