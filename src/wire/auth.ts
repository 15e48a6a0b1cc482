import crypto from 'node:crypto';
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * Token authentication with roles. A server given a token table refuses every call that
 * does not carry a token of a role the method needs; a client sends its one token in the
 * `authorization: Bearer <token>` header of every call.
 *
 * Token table format (a file, or the LR_AUTH_TOKENS variable holding the same text):
 *
 *   # comment
 *   <roles> <token> [<name>]
 *
 * one token per line; <roles> is a comma-separated list of read, write, replicate;
 * <name> (optional) names the holder in logs, which never show tokens. Lines may also be
 * separated by `;` (handy in one-line environment variables).
 */
export const ROLES = ['read', 'write', 'replicate'] as const;
export type Role = (typeof ROLES)[number];

export const TOKEN_MIN_LENGTH = 16;
export const TOKEN_MAX_LENGTH = 512;
/** Characters that survive an HTTP/2 header and a shell unquoted: base64, base64url, hex. */
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]+$/;
const NAME_PATTERN = /^[A-Za-z0-9._@:-]{1,64}$/;

export const AUTH_HEADER = 'authorization';

/**
 * The role each method needs. Invariant: every RPC a server offers is listed here or under
 * a prefix below; anything else is refused when tokens are configured (deny by default).
 */
const METHOD_ROLES: Record<string, Role | 'public'> = {
  '/levelreplicator.v1.Master/Write': 'write',
  '/levelreplicator.v1.Master/Subscribe': 'replicate',
  '/levelreplicator.v1.Master/Ack': 'replicate',
  '/levelreplicator.v1.Master/Status': 'read',
  // Changes what the master keeps (its log and its slots), as writes do: no new role to hand out.
  '/levelreplicator.v1.Master/DropSlot': 'write',
  // Role changes decide who takes writes: the write role, as DropSlot.
  '/levelreplicator.v1.Admin/Promote': 'write',
  '/levelreplicator.v1.Admin/Follow': 'write',
  '/levelreplicator.v1.Admin/PauseWrites': 'write',
  '/levelreplicator.v1.Store/Get': 'read',
  '/levelreplicator.v1.Store/Digest': 'read',
};
const PREFIX_ROLES: [string, Role | 'public'][] = [
  // Health checks are for load balancers and orchestrators, which hold no tokens.
  ['/grpc.health.v1.Health/', 'public'],
  ['/grpc.reflection.', 'read'],
];

export function roleForMethod(path: string): Role | 'public' | undefined {
  return METHOD_ROLES[path] ?? PREFIX_ROLES.find(([prefix]) => path.startsWith(prefix))?.[1];
}

export interface Principal {
  name: string;
  roles: ReadonlySet<Role>;
}

/** Tokens are kept only as SHA-256 digests: lookups by digest do not leak through timing. */
export class TokenTable {
  private readonly byDigest = new Map<string, Principal>();

  add(token: string, principal: Principal): void {
    const digest = digestOf(token);
    if (this.byDigest.has(digest)) throw new Error('the same token appears twice');
    this.byDigest.set(digest, principal);
  }

  lookup(token: string): Principal | undefined {
    return this.byDigest.get(digestOf(token));
  }

  get size(): number {
    return this.byDigest.size;
  }
}

function digestOf(token: string): string {
  return crypto.createHash('sha256').update(token, 'utf8').digest('hex');
}

function checkToken(token: string, where: string): void {
  if (token.length < TOKEN_MIN_LENGTH || token.length > TOKEN_MAX_LENGTH || !TOKEN_PATTERN.test(token)) {
    throw new ReplicatorError(
      ErrorCode.INVALID_ARGUMENT,
      `${where}: a token must be ${TOKEN_MIN_LENGTH} to ${TOKEN_MAX_LENGTH} characters of A-Z a-z 0-9 . _ ~ + / = - (make one with: openssl rand -hex 32)`,
    );
  }
}

/** Parses a token table; `source` names it in errors (never the tokens themselves). */
export function parseTokenTable(text: string, source: string): TokenTable {
  const table = new TokenTable();
  const lines = text.split(/\r?\n|;/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const where = `${source}, entry ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length < 2 || fields.length > 3) {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${where}: expected "<roles> <token> [<name>]"`);
    }
    const [rolesField, token, name = `entry-${i + 1}`] = fields;
    const roles = new Set<Role>();
    for (const r of rolesField.split(',')) {
      if (!(ROLES as readonly string[]).includes(r)) {
        throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${where}: unknown role ${JSON.stringify(r.slice(0, 32))}; roles are ${ROLES.join(', ')}`);
      }
      roles.add(r as Role);
    }
    checkToken(token, where);
    if (!NAME_PATTERN.test(name)) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${where}: a name is 1 to 64 characters of A-Z a-z 0-9 . _ @ : -`);
    try {
      table.add(token, { name, roles });
    } catch {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${where}: this token already appears on an earlier line`);
    }
  });
  if (table.size === 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${source} holds no tokens`);
  return table;
}

export function readTextFile(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** True when a secrets file can be read by other users (we warn, as ssh does). */
export function isGroupOrWorldReadable(file: string): boolean {
  try {
    return (fs.statSync(file).mode & 0o044) !== 0;
  } catch {
    return false;
  }
}

/** A client's token: the first non-comment line of a token file. */
export function parseClientToken(text: string, source: string): string {
  const token = text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .find((l) => l !== '');
  if (token === undefined) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${source} holds no token`);
  checkToken(token, source);
  return token;
}

export type AuthDecision = { ok: true; principal?: Principal } | { ok: false; error: ReplicatorError; principal?: Principal };

/** Decides whether a call to `path` with `metadata` may proceed. No table: everything is allowed. */
export function authorize(table: TokenTable | undefined, path: string, metadata: grpc.Metadata): AuthDecision {
  if (!table) return { ok: true };
  const needed = roleForMethod(path);
  if (needed === 'public') return { ok: true };
  const header = metadata.get(AUTH_HEADER)[0];
  const match = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header) : null;
  if (!match) {
    return {
      ok: false,
      error: new ReplicatorError(ErrorCode.UNAUTHENTICATED, 'this server requires a token: set LR_TOKEN or pass --token-file'),
    };
  }
  const principal = table.lookup(match[1]);
  if (!principal) return { ok: false, error: new ReplicatorError(ErrorCode.UNAUTHENTICATED, 'the token is not valid on this server') };
  if (needed === undefined) {
    return { ok: false, principal, error: new ReplicatorError(ErrorCode.PERMISSION_DENIED, `no role grants access to ${path}`) };
  }
  if (!principal.roles.has(needed)) {
    return {
      ok: false,
      principal,
      error: new ReplicatorError(
        ErrorCode.PERMISSION_DENIED,
        `the token of ${principal.name} has role ${[...principal.roles].join(',')}; ${path.slice(1)} needs role ${needed}`,
      ),
    };
  }
  return { ok: true, principal };
}

/** Client side: sends the token with every call on a channel, over TLS or not. */
export function tokenInterceptor(token: string): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTH_HEADER, `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}
