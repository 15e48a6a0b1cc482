import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { followerDataDir, parseAddress, parseFollowerId, parsePath, parsePositiveInt } from '../../src/common/config.js';
import { ErrorCode, isReplicatorError } from '../../src/common/errors.js';
import { MAX_SEQ, seqFromWire, seqToWire } from '../../src/wire/seq.js';

describe('config parsing', () => {
  it('accepts positive integer follower ids', () => {
    assert.equal(parseFollowerId('1'), 1);
    assert.equal(parseFollowerId(42), 42);
    assert.equal(parseFollowerId('4294967295'), 4294967295);
  });

  it('refuses anything else, including path escapes', () => {
    for (const bad of ['0', '-1', '01', '1.0', '1e3', '../x', '..', '1/2', '/abs', ' 1', '', undefined, null, '4294967296', 'abc']) {
      assert.throws(
        () => parseFollowerId(bad),
        (err) => isReplicatorError(err, ErrorCode.INVALID_FOLLOWER_ID),
        `accepted ${JSON.stringify(bad)}`,
      );
    }
  });

  it('parses addresses; port 0 only where allowed', () => {
    assert.equal(parseAddress('127.0.0.1:50051'), '127.0.0.1:50051');
    assert.equal(parseAddress('[::1]:9'), '[::1]:9');
    assert.equal(parseAddress('localhost:0', { allowPortZero: true }), 'localhost:0');
    for (const bad of ['localhost:0', 'host', ':80', 'host:65536', 'host:-1', 'a b:1', '']) {
      assert.throws(() => parseAddress(bad), (err) => isReplicatorError(err, ErrorCode.INVALID_ADDRESS), bad);
    }
  });

  it('positive integers', () => {
    assert.equal(parsePositiveInt('5', 'x'), 5);
    for (const bad of ['0', '-5', '1.5', 'x', '']) assert.throws(() => parsePositiveInt(bad, 'x'));
  });

  it('paths: anything but empty', () => {
    assert.equal(parsePath('./data', '--data-dir'), './data');
    for (const bad of ['', undefined, null]) {
      assert.throws(() => parsePath(bad, '--data-dir'), (err) => isReplicatorError(err, ErrorCode.INVALID_ARGUMENT) && /--data-dir needs a path/.test(err.message));
    }
  });

  it('data directories stay under the data root', () => {
    assert.equal(followerDataDir('data', 3), 'data/follower-3');
  });

  it('seqs cross the wire as decimal strings, full uint64 range', () => {
    assert.equal(seqFromWire(seqToWire(MAX_SEQ)), MAX_SEQ);
    assert.equal(seqFromWire(undefined), 0n);
    assert.equal(seqFromWire('0'), 0n);
  });
});
