import type * as grpc from '@grpc/grpc-js';
import type { Argv } from 'yargs';
import {
  isGroupOrWorldReadable,
  parseClientToken,
  parseTokenTable,
  readTextFile,
  tokenInterceptor,
  type TokenTable,
} from './auth.js';
import { addOptions, type OptionSpec } from '../common/options.js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { CHANNEL_OPTIONS } from './grpc-transport.js';
import type { Logger } from '../common/logger.js';
import { channelCredentials, loadTls, serverCredentials, type TlsMaterial } from './tls.js';

/** Environment variables holding secrets themselves (there are no flags for them: flags show in ps). */
export const TOKEN_ENV = 'LR_TOKEN';
export const AUTH_TOKENS_ENV = 'LR_AUTH_TOKENS';

/** How a server accepts connections and calls. */
export interface ServerSecurity {
  credentials: grpc.ServerCredentials;
  tls: boolean;
  clientAuth: boolean;
  tokens?: TokenTable;
}

/** How a client connects and authenticates. tls undefined: plaintext. */
export interface ClientSecurity {
  tls?: TlsMaterial;
  serverName?: string;
  token?: string;
}

export const NO_CLIENT_SECURITY: ClientSecurity = {};

const TLS_FILE_OPTIONS: Record<string, OptionSpec> = {
  'tls-ca': { type: 'string', env: 'LR_TLS_CA', describe: 'PEM CA bundle: clients verify servers against it; a server with --tls-client-auth verifies client certificates against it' },
  'tls-cert': { type: 'string', env: 'LR_TLS_CERT', describe: 'PEM certificate (chain) this process presents: as a server it turns TLS on; as a client it is the client certificate for mutual TLS' },
  'tls-key': { type: 'string', env: 'LR_TLS_KEY', describe: 'PEM private key of --tls-cert' },
};

export const SERVER_SECURITY_OPTIONS: Record<string, OptionSpec> = {
  ...TLS_FILE_OPTIONS,
  'tls-client-auth': { type: 'boolean', default: false, env: 'LR_TLS_CLIENT_AUTH', describe: 'Mutual TLS: accept only clients presenting a certificate signed by --tls-ca' },
  'auth-tokens-file': {
    type: 'string',
    env: 'LR_AUTH_TOKENS_FILE',
    describe: `Token table, one "<roles> <token> [<name>]" per line (roles: read, write, replicate); every call then needs a token with the method's role. Or put the table itself in ${AUTH_TOKENS_ENV}`,
  },
};

export const CLIENT_SECURITY_OPTIONS: Record<string, OptionSpec> = {
  tls: { type: 'boolean', env: 'LR_TLS', describe: 'Connect with TLS (on by default when --tls-ca or --tls-cert is given; --no-tls forces plaintext); without --tls-ca the system\'s CAs verify the server' },
  ...TLS_FILE_OPTIONS,
  'tls-server-name': { type: 'string', env: 'LR_TLS_SERVER_NAME', describe: 'Name the server certificate must carry, when it differs from the host of the address' },
  'token-file': {
    type: 'string',
    env: 'LR_TOKEN_FILE',
    describe: `File holding this client's token (first line). Or put the token itself in ${TOKEN_ENV}; tokens are never taken on the command line, where ps would show them`,
  },
};

/** Adds security options and refuses a --token flag with an explanation. */
export function withSecurityOptions<T>(y: Argv<T>, specs: Record<string, OptionSpec>): Argv<T> {
  return addOptions(y, specs).option('token', { type: 'string', hidden: true }) as Argv<T>;
}

type Args = Record<string, unknown>;

function refuseTokenFlag(argv: Args): void {
  if (argv.token !== undefined) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `--token is not accepted (ps would show it): put the token in ${TOKEN_ENV} or in a file named by --token-file`);
  }
}

function str(argv: Args, name: string): string | undefined {
  const v = argv[name];
  return v === undefined || v === '' ? undefined : String(v);
}

export function serverSecurityFromArgv(argv: Args, log?: Logger): ServerSecurity {
  refuseTokenFlag(argv);
  const keyFile = str(argv, 'tls-key');
  const material = loadTls({ ca: str(argv, 'tls-ca'), cert: str(argv, 'tls-cert'), key: keyFile });
  if (keyFile && isGroupOrWorldReadable(keyFile)) log?.warn({ file: keyFile }, 'the TLS private key can be read by other users; chmod 600 it');
  const clientAuth = argv['tls-client-auth'] === true;
  const credentials = serverCredentials(material, clientAuth);
  let tokens: TokenTable | undefined;
  const file = str(argv, 'auth-tokens-file');
  if (file !== undefined) {
    tokens = parseTokenTable(readTextFile(file, 'token table'), file);
    if (isGroupOrWorldReadable(file)) log?.warn({ file }, 'the token table can be read by other users; chmod 600 it');
  } else if (process.env[AUTH_TOKENS_ENV]) {
    tokens = parseTokenTable(process.env[AUTH_TOKENS_ENV], AUTH_TOKENS_ENV);
  }
  if (material.certInfo?.expired) log?.warn({ subject: material.certInfo.subject, validTo: material.certInfo.validTo }, 'the TLS certificate is expired or not yet valid; clients will refuse it');
  return { credentials, tls: material.cert !== undefined, clientAuth, tokens };
}

export function clientSecurityFromArgv(argv: Args): ClientSecurity {
  refuseTokenFlag(argv);
  const files = { ca: str(argv, 'tls-ca'), cert: str(argv, 'tls-cert'), key: str(argv, 'tls-key') };
  const wanted = argv.tls === undefined ? files.ca !== undefined || files.cert !== undefined : argv.tls === true;
  const file = str(argv, 'token-file');
  const envToken = process.env[TOKEN_ENV];
  const token = file !== undefined ? parseClientToken(readTextFile(file, 'token file'), file) : envToken ? parseClientToken(envToken, TOKEN_ENV) : undefined;
  return { tls: wanted ? loadTls(files) : undefined, serverName: str(argv, 'tls-server-name'), token };
}

/**
 * Credentials and options of a channel. `tls` overrides the client's choice when the
 * server's own endpoint file says what it speaks (get-data, store-digest).
 */
export function channelSetup(sec: ClientSecurity, tls?: boolean): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
  const material = tls === undefined ? sec.tls : tls ? (sec.tls ?? {}) : undefined;
  const options: grpc.ChannelOptions = { ...CHANNEL_OPTIONS };
  if (sec.token) options.interceptors = [tokenInterceptor(sec.token)];
  if (material && sec.serverName) options['grpc.ssl_target_name_override'] = sec.serverName;
  return { credentials: channelCredentials(material), options };
}

/** True for addresses only this machine can reach. */
export function isLoopbackAddress(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The start-up warning for a server reachable from other machines without TLS, or without
 * any client authentication (tokens or client certificates). One line on stderr, where a
 * person starting the server sees it, and a warn log line.
 */
export function warnIfExposed(name: string, address: string, sec: ServerSecurity, log: Logger): void {
  if (isLoopbackAddress(address)) return;
  const missing: string[] = [];
  if (!sec.tls) missing.push('without TLS (data and tokens cross the network in clear text)');
  if (!sec.tokens && !sec.clientAuth) missing.push('without tokens or client certificates (anyone who can connect may read, write and replicate)');
  if (missing.length === 0) return;
  const text = `listening on ${address} ${missing.join(' and ')}`;
  log.warn({ address, tls: sec.tls, tokens: Boolean(sec.tokens), clientAuth: sec.clientAuth }, `INSECURE: ${text}`);
  process.stderr.write(`${name}: WARNING: ${text}; see README "Security"\n`);
}
