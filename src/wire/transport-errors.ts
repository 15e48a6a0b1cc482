/**
 * Turns grpc-js connection failure details ("No connection established. Last error:
 * Error: 80EC…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:…\n.
 * Resolution note: ") into one readable line, and recognises TLS failures so the CLIs can
 * say which option to check.
 */
export function lastConnectionError(details: string | undefined): string {
  const text = String(details ?? '');
  const m = /Last error: ([\s\S]*?)(?:\.?\s*Resolution note:[\s\S]*)?$/.exec(text);
  let reason = (m ? m[1] : text).replace(/^Error(?: \[[A-Z_0-9]+\])?: /, '');
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(reason);
  if (ssl) reason = ssl[1];
  reason = reason.replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)\s*$/, ''); // grpc-js timestamps
  return reason.replace(/\s+/g, ' ').trim().replace(/\.$/, '');
}

const TLS_HINTS: [RegExp, string][] = [
  [/wrong version number|packet length too long|http request/i, 'the server does not speak TLS at this address: drop --tls and --tls-ca, or turn TLS on at the server'],
  [/alert certificate required/i, 'the server requires a client certificate: pass --tls-cert and --tls-key'],
  [/alert (unknown ca|bad certificate|certificate unknown|unsupported certificate|decrypt error)/i, 'the server does not accept this client certificate'],
  [/self[- ]signed|unable to (verify|get local issuer)|certificate (has expired|is not yet valid)|certificate signature failure/i, 'the server certificate is not trusted: check --tls-ca'],
  [/altnames|does not match certificate|hostname/i, 'the server certificate does not name this host: check the address or pass --tls-server-name'],
];

/** A hint when details describe a TLS failure, else undefined. */
export function tlsFailureHint(details: string | undefined): string | undefined {
  const text = String(details ?? '');
  for (const [pattern, hint] of TLS_HINTS) if (pattern.test(text)) return hint;
  if (/SSL routines|TLS|certificate/i.test(text)) return 'check the --tls-* options of both sides';
  return undefined;
}
