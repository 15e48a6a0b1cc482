import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { authorize, parseClientToken, parseTokenTable, roleForMethod } from '../../src/wire/auth.js';
import { isReplicatorError } from '../../src/common/errors.js';
import { MAX_MUTATIONS_PER_REQUEST, MAX_WRITES_PER_REQUEST } from '../../src/common/limits.js';
import { replicatorProto } from '../../src/wire/proto.js';
import { hardenDeserializer, hardenService, RefusedRequest } from '../../src/wire/request-decoding.js';
import { isLoopbackAddress } from '../../src/wire/security.js';
import { lastConnectionError, tlsFailureHint } from '../../src/wire/transport-errors.js';
import { encodeMaster } from '../helpers/raw-client.js';

const W = 'writer-token-0123456789';
const R = 'reader-token-0123456789';

function md(token?: string): grpc.Metadata {
  const m = new grpc.Metadata();
  if (token !== undefined) m.set('authorization', `Bearer ${token}`);
  return m;
}

describe('token table', () => {
  it('parses roles, tokens and names; skips comments and blank lines; accepts ; as a separator', () => {
    const table = parseTokenTable(`# comment\n\nwrite,read ${W} loader  # trailing comment\nread ${R}`, 'test');
    assert.equal(table.size, 2);
    assert.deepEqual([...table.lookup(W)!.roles].sort(), ['read', 'write']);
    assert.equal(table.lookup(W)!.name, 'loader');
    assert.equal(table.lookup(R)!.name, 'entry-4');
    assert.equal(parseTokenTable(`write ${W}; read ${R}`, 'env').size, 2);
  });

  it('refuses unknown roles, short or odd tokens, duplicates, bad lines and empty tables, naming the entry but never the token', () => {
    const bad: [string, RegExp][] = [
      [`admin ${W}`, /entry 1: unknown role "admin"/],
      ['write short', /entry 1: a token must be 16 to 512 characters/],
      [`write ${W.replace('-', ' ')}x extra`, /expected "<roles> <token> \[<name>\]"/],
      [`write ${W}\nread ${W}`, /entry 2: this token already appears/],
      [`write ${W}é`, /a token must be/],
      ['# only comments', /holds no tokens/],
      [`write ${W} bad/name`, /a name is 1 to 64 characters/],
    ];
    for (const [text, message] of bad) {
      assert.throws(() => parseTokenTable(text, 'tokens'), (err) => isReplicatorError(err, 'INVALID_ARGUMENT') && message.test(err.message) && !err.message.includes(W));
    }
  });

  it('reads a client token from the first non-comment line', () => {
    assert.equal(parseClientToken(`# mine\n\n  ${W}  \nignored`, 'f'), W);
    assert.throws(() => parseClientToken('# nothing', 'f'), /holds no token/);
  });
});

describe('authorization', () => {
  const table = parseTokenTable(`write ${W} loader\nread ${R}`, 'test');

  it('maps every method to its role; health is public; unknown methods have none', () => {
    assert.equal(roleForMethod('/levelreplicator.v1.Master/Write'), 'write');
    assert.equal(roleForMethod('/levelreplicator.v1.Master/Subscribe'), 'replicate');
    assert.equal(roleForMethod('/levelreplicator.v1.Master/Ack'), 'replicate');
    assert.equal(roleForMethod('/levelreplicator.v1.Master/Status'), 'read');
    assert.equal(roleForMethod('/levelreplicator.v1.Store/Get'), 'read');
    assert.equal(roleForMethod('/grpc.health.v1.Health/Check'), 'public');
    assert.equal(roleForMethod('/levelreplicator.v1.Master/Unknown'), undefined);
  });

  it('allows everything without a table; otherwise UNAUTHENTICATED or PERMISSION_DENIED', () => {
    assert.equal(authorize(undefined, '/levelreplicator.v1.Master/Write', md()).ok, true);
    const cases: [string, grpc.Metadata, true | string][] = [
      ['/levelreplicator.v1.Master/Write', md(W), true],
      ['/levelreplicator.v1.Master/Write', md(R), 'PERMISSION_DENIED'],
      ['/levelreplicator.v1.Master/Write', md(), 'UNAUTHENTICATED'],
      ['/levelreplicator.v1.Master/Write', md('unknown-token-0123456789'), 'UNAUTHENTICATED'],
      ['/levelreplicator.v1.Store/Get', md(R), true],
      ['/levelreplicator.v1.Master/Subscribe', md(R), 'PERMISSION_DENIED'],
      ['/grpc.health.v1.Health/Check', md(), true],
      ['/levelreplicator.v1.Master/Unknown', md(W), 'PERMISSION_DENIED'],
    ];
    for (const [path, metadata, expected] of cases) {
      const d = authorize(table, path, metadata);
      if (expected === true) assert.equal(d.ok, true, path);
      else assert.equal(!d.ok && d.error.code, expected, path);
    }
    const basic = new grpc.Metadata();
    basic.set('authorization', `Basic ${W}`);
    assert.equal(authorize(table, '/levelreplicator.v1.Master/Write', basic).ok, false);
  });
});

describe('request decoding', () => {
  const del = { kind: 'DELETE', key: Buffer.from('k') };
  // The Write deserializer every server installs: counts and limits are checked as the request is read.
  const write = hardenService(replicatorProto().Master.service).Write.requestDeserialize;
  const refusal = (bytes: Buffer) => {
    const out = write(bytes);
    return out instanceof RefusedRequest ? out.error : undefined;
  };

  it('counts writes and mutations on the wire, exactly at the limits', () => {
    assert.equal(refusal(encodeMaster('Write', { writes: Array.from({ length: MAX_WRITES_PER_REQUEST }, () => ({ mutations: [del] })) })), undefined);
    assert.ok(isReplicatorError(refusal(encodeMaster('Write', { writes: Array.from({ length: MAX_WRITES_PER_REQUEST + 1 }, () => ({ mutations: [del] })) })), 'BATCH_TOO_LARGE'));
    const perWrite = MAX_MUTATIONS_PER_REQUEST / 10;
    const writes = (n: number) => Array.from({ length: 10 }, (_, i) => ({ mutations: Array.from({ length: perWrite + (i === 9 ? n : 0) }, () => del) }));
    assert.equal(refusal(encodeMaster('Write', { writes: writes(0) })), undefined);
    assert.match(String(refusal(encodeMaster('Write', { writes: writes(1) }))?.message), /more than 100000 mutations/);
  });

  it('hardened deserializers never throw: garbage becomes a RefusedRequest with the reason', () => {
    const decode = hardenDeserializer('/levelreplicator.v1.Master/Write', () => {
      throw new Error('index out of range');
    });
    const out = decode(Buffer.from([1, 2, 3]));
    assert.ok(out instanceof RefusedRequest);
    assert.equal(out.error.code, 'MALFORMED_REQUEST');
    assert.match(out.error.message, /Write request is not a valid protobuf message: index out of range/);
  });
});

describe('transport errors and addresses', () => {
  it('turns grpc-js connection details into one line, and recognises TLS failures', () => {
    const raw = 'No connection established. Last error: Error: 80EC:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/x.c:350:\n. Resolution note: ';
    assert.equal(lastConnectionError(raw), 'wrong version number');
    assert.match(tlsFailureHint(raw)!, /does not speak TLS/);
    assert.equal(lastConnectionError('No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: '), 'connect ECONNREFUSED 127.0.0.1:1');
    assert.equal(tlsFailureHint('connect ECONNREFUSED 127.0.0.1:1'), undefined);
    assert.match(tlsFailureHint('Error: self-signed certificate in certificate chain')!, /check --tls-ca/);
    assert.match(tlsFailureHint('SSL alert number 116 tlsv13 alert certificate required')!, /client certificate/);
  });

  it('knows loopback addresses', () => {
    for (const a of ['127.0.0.1:1', '127.9.8.7:50051', 'localhost:1', '[::1]:1']) assert.equal(isLoopbackAddress(a), true, a);
    for (const a of ['0.0.0.0:1', '[::]:1', '10.0.0.5:1', 'db1.example.com:1', '128.0.0.1:1']) assert.equal(isLoopbackAddress(a), false, a);
  });
});
