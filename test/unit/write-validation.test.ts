import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { MAX_KEY_BYTES, MAX_MUTATIONS_PER_WRITE, MAX_VALUE_BYTES, MAX_WRITES_PER_REQUEST } from '../../src/common/limits.js';
import type { Write } from '../../src/wire/generated/levelreplicator/v1/Write.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { strictRequestDecoder } from '../../src/wire/request-decoding.js';
import type { WriteRequestDecoder } from '../../src/wire/write-request-decoder.js';
import { checkKey, checkValue } from '../../src/wire/write-validation.js';

// The master validates writes as it decodes them (write-request-decoder.ts): these are the
// cases the validation of decoded requests was tested with, sent as the bytes a client sends.
const method = replicatorProto().Master.service.Write;
const decode = strictRequestDecoder(method) as WriteRequestDecoder;
const validate = (writes: Write[]) => decode(method.requestSerialize({ writes }) as Buffer).prepared();

const w = (key: Buffer, value = Buffer.from('v'), kind: 'PUT' | 'DELETE' = 'PUT'): Write => ({ mutations: [{ kind, key, value }] });
const refuses = (writes: Write[], code: string) =>
  assert.throws(() => validate(writes), (err) => isReplicatorError(err) && err.code === code);

describe('write validation', () => {
  it('accepts keys and values exactly at the limits', () => {
    const prepared = validate([w(Buffer.alloc(MAX_KEY_BYTES, 1), Buffer.alloc(MAX_VALUE_BYTES))]);
    assert.equal(prepared.count, 1);
    assert.equal(prepared.bytes, MAX_KEY_BYTES + MAX_VALUE_BYTES);
  });

  it('refuses one byte over, empty keys, empty requests and too many operations', () => {
    refuses([w(Buffer.alloc(MAX_KEY_BYTES + 1, 1))], ErrorCode.KEY_TOO_LARGE);
    refuses([w(Buffer.from('k'), Buffer.alloc(MAX_VALUE_BYTES + 1))], ErrorCode.VALUE_TOO_LARGE);
    refuses([w(Buffer.alloc(0))], ErrorCode.EMPTY_KEY);
    refuses([w(Buffer.alloc(0), Buffer.alloc(0), 'DELETE')], ErrorCode.EMPTY_KEY);
    refuses([], ErrorCode.INVALID_ARGUMENT);
    refuses([{ mutations: [] }], ErrorCode.INVALID_ARGUMENT);
    refuses(Array.from({ length: MAX_WRITES_PER_REQUEST + 1 }, () => w(Buffer.from('k'))), ErrorCode.BATCH_TOO_LARGE);
    refuses([{ mutations: Array.from({ length: MAX_MUTATIONS_PER_WRITE + 1 }, () => w(Buffer.from('k')).mutations![0]) }], ErrorCode.BATCH_TOO_LARGE);
    refuses(Array.from({ length: 20 }, (_, i) => w(Buffer.from(`k${i}`), Buffer.alloc(MAX_VALUE_BYTES))), ErrorCode.BATCH_TOO_LARGE);
  });

  it('refuses unknown mutation kinds', () => {
    refuses([{ mutations: [{ kind: 7 as unknown as 'PUT', key: Buffer.from('k'), value: Buffer.alloc(0) }] }], ErrorCode.INVALID_ARGUMENT);
  });

  it('checks keys and values as the CLIs and Get do, with the same messages', () => {
    checkKey(Buffer.alloc(MAX_KEY_BYTES));
    checkValue(Buffer.alloc(MAX_VALUE_BYTES));
    assert.throws(() => checkKey(Buffer.alloc(0), ' at -:3'), (err) => isReplicatorError(err, 'EMPTY_KEY') && err.message === 'key must not be empty at -:3');
    assert.throws(() => checkKey(Buffer.alloc(MAX_KEY_BYTES + 1)), (err) => isReplicatorError(err, 'KEY_TOO_LARGE') && err.message === `key is ${MAX_KEY_BYTES + 1} bytes; the limit is ${MAX_KEY_BYTES}`);
    assert.throws(() => checkValue(Buffer.alloc(MAX_VALUE_BYTES + 1)), (err) => isReplicatorError(err, 'VALUE_TOO_LARGE'));
  });
});
