import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ReplicatorError } from '../common/errors.js';

/**
 * TLS material from PEM files. Everything is read and checked once, at start-up, so a
 * wrong path, a key that does not match its certificate or a file that is not PEM is one
 * clear error before anything listens or connects.
 */
export interface TlsFiles {
  /** PEM CA bundle: clients verify servers with it; servers verify client certificates with it. */
  ca?: string;
  /** PEM certificate chain this process presents. */
  cert?: string;
  /** PEM private key of cert. */
  key?: string;
}

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Subject and validity of cert, for the start-up log. */
  certInfo?: { subject: string; validTo: string; expired: boolean };
}

function readPem(file: string, option: string): Buffer {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot read ${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!data.includes('-----BEGIN ')) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${option} ${file} is not a PEM file`);
  return data;
}

export function loadTls(files: TlsFiles): TlsMaterial {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, '--tls-cert and --tls-key go together: give both or neither');
  }
  const m: TlsMaterial = {
    ca: files.ca === undefined ? undefined : readPem(files.ca, '--tls-ca'),
    cert: files.cert === undefined ? undefined : readPem(files.cert, '--tls-cert'),
    key: files.key === undefined ? undefined : readPem(files.key, '--tls-key'),
  };
  try {
    // The same checks the TLS stack makes at the first handshake, made now.
    tls.createSecureContext({ ca: m.ca, cert: m.cert, key: m.key });
  } catch (err) {
    const reason = (err as Error).message;
    const which = /key values mismatch/i.test(reason) ? '--tls-key does not belong to --tls-cert' : `invalid TLS files: ${reason}`;
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, which);
  }
  if (m.cert) {
    const x509 = new crypto.X509Certificate(m.cert);
    const now = Date.now();
    m.certInfo = {
      subject: x509.subject.replace(/\n/g, ', '),
      validTo: x509.validTo,
      expired: now > Date.parse(x509.validTo) || now < Date.parse(x509.validFrom),
    };
  }
  return m;
}

/** Server credentials; with clientAuth, only clients presenting a certificate signed by ca get through. */
export function serverCredentials(m: TlsMaterial, clientAuth: boolean): grpc.ServerCredentials {
  if (!m.cert || !m.key) {
    if (clientAuth) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, '--tls-client-auth needs --tls-cert and --tls-key (and --tls-ca to verify clients)');
    return grpc.ServerCredentials.createInsecure();
  }
  if (clientAuth && !m.ca) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, '--tls-client-auth needs --tls-ca, the CA that signs client certificates');
  return grpc.ServerCredentials.createSsl(clientAuth ? m.ca! : null, [{ private_key: m.key, cert_chain: m.cert }], clientAuth);
}

/** Client credentials: verify the server against ca (the system's CAs when absent); present cert if given. */
export function channelCredentials(m: TlsMaterial | undefined): grpc.ChannelCredentials {
  if (!m) return grpc.credentials.createInsecure();
  silenceIpServerNameWarning();
  return grpc.credentials.createSsl(m.ca ?? null, m.key ?? null, m.cert ?? null);
}

let silenced = false;
/**
 * grpc-js sends the target host as TLS server name even when it is an IP address, and
 * Node then prints deprecation DEP0123 on stderr, breaking our one-line error rule. The
 * certificate is still verified against the IP (its subjectAltName); only that warning is
 * dropped, every other warning passes through.
 */
function silenceIpServerNameWarning(): void {
  if (silenced) return;
  silenced = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const code = typeof args[1] === 'object' && args[1] !== null ? (args[1] as { code?: string }).code : args[2];
    if (code === 'DEP0123') return;
    emit(...args);
  }) as typeof process.emitWarning;
}
