import fs from 'node:fs';
import path from 'node:path';

/**
 * A running node writes where it serves into <dataDir>/endpoint.json so tools find it
 * without being told the port. The file is advisory: tools confirm by calling the
 * address, and fall back to the store itself when nothing answers.
 */
export interface Endpoint {
  pid: number;
  role: 'master' | 'follower';
  address: string;
  /** Where the node serves Prometheus metrics (GET /metrics), when it does. */
  metricsAddress?: string;
  startedAt: string;
  /** The server speaks TLS there (absent in files of older versions: plaintext). */
  tls?: boolean;
}

function fileOf(dataDir: string): string {
  return path.join(dataDir, 'endpoint.json');
}

export function writeEndpoint(dataDir: string, endpoint: Endpoint): void {
  const file = fileOf(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(endpoint) + '\n');
  fs.renameSync(tmp, file); // atomic: readers never see half a file
}

export function readEndpoint(dataDir: string): Endpoint | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(fileOf(dataDir), 'utf8')) as Endpoint;
    return typeof parsed.address === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the file only if it is still ours (a newer process may have replaced it). */
export function removeEndpoint(dataDir: string): void {
  if (readEndpoint(dataDir)?.pid === process.pid) fs.rmSync(fileOf(dataDir), { force: true });
}
