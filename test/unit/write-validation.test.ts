import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { MAX_KEY_BYTES, MAX_MUTATIONS_PER_WRITE, MAX_VALUE_BYTES, MAX_WRITES_PER_REQUEST } from '../../src/common/limits.js';
import { validateWrites } from '../../src/wire/write-validation.js';
import type { Write__Output } from '../../src/wire/generated/levelreplicator/v1/Write.js';

const w = (key: Buffer, value = Buffer.from('v'), kind: 'PUT' | 'DELETE' = 'PUT'): Write__Output => ({ mutations: [{ kind, key, value }] });
const refuses = (writes: Write__Output[], code: string) =>
  assert.throws(() => validateWrites(writes), (err) => isReplicatorError(err) && err.code === code);

describe('write validation', () => {
  it('accepts keys and values exactly at the limits', () => {
    const { writes, bytes } = validateWrites([w(Buffer.alloc(MAX_KEY_BYTES, 1), Buffer.alloc(MAX_VALUE_BYTES))]);
    assert.equal(writes.length, 1);
    assert.equal(bytes, MAX_KEY_BYTES + MAX_VALUE_BYTES);
  });

  it('refuses one byte over, empty keys, empty requests and too many operations', () => {
    refuses([w(Buffer.alloc(MAX_KEY_BYTES + 1, 1))], ErrorCode.KEY_TOO_LARGE);
    refuses([w(Buffer.from('k'), Buffer.alloc(MAX_VALUE_BYTES + 1))], ErrorCode.VALUE_TOO_LARGE);
    refuses([w(Buffer.alloc(0))], ErrorCode.EMPTY_KEY);
    refuses([w(Buffer.alloc(0), Buffer.alloc(0), 'DELETE')], ErrorCode.EMPTY_KEY);
    refuses([], ErrorCode.INVALID_ARGUMENT);
    refuses([{ mutations: [] }], ErrorCode.INVALID_ARGUMENT);
    refuses(Array.from({ length: MAX_WRITES_PER_REQUEST + 1 }, () => w(Buffer.from('k'))), ErrorCode.BATCH_TOO_LARGE);
    refuses([{ mutations: Array.from({ length: MAX_MUTATIONS_PER_WRITE + 1 }, () => w(Buffer.from('k')).mutations[0]) }], ErrorCode.BATCH_TOO_LARGE);
    refuses(Array.from({ length: 20 }, (_, i) => w(Buffer.from(`k${i}`), Buffer.alloc(MAX_VALUE_BYTES))), ErrorCode.BATCH_TOO_LARGE);
  });

  it('refuses unknown mutation kinds', () => {
    refuses([{ mutations: [{ kind: 7 as unknown as 'PUT', key: Buffer.from('k'), value: Buffer.alloc(0) }] }], ErrorCode.INVALID_ARGUMENT);
  });
});
