import { ErrorCode, isReplicatorError } from '../common/errors.js';
import type { DropSlotResponse__Output } from '../wire/generated/levelreplicator/v1/DropSlotResponse.js';
import { callUnary, masterClient } from '../wire/rpc-client.js';
import { clientSecurityFromArgv, type ClientSecurity } from '../wire/security.js';
import { locateMaster } from './master-locator.js';
import { discoveryFromArgv, locateMasterViaEtcd } from './etcd-discovery.js';

/**
 * The master replication-admin acts on, from --master: one address is used as given (a
 * follower then refuses with NOT_MASTER naming the master, as before several addresses
 * were taken); of several, the master of the newest epoch (master-locator.ts). With
 * --etcd: the leader etcd names, once it answers as the master of its epoch.
 */
export async function adminMaster(argv: Record<string, unknown>, name: string): Promise<string> {
  const discovery = discoveryFromArgv(argv, argv['timeout-ms'] as number);
  if (discovery) {
    try {
      const found = await locateMasterViaEtcd(discovery, clientSecurityFromArgv(argv), argv['timeout-ms'] as number);
      if (found.redirect) process.stderr.write(`${name}: ${found.redirect.reason}; using the master at ${found.address}\n`);
      return found.address;
    } finally {
      discovery.close();
    }
  }
  const addresses = argv.master as string[];
  if (addresses.length === 1) return addresses[0];
  const found = await locateMaster(addresses, clientSecurityFromArgv(argv), argv['timeout-ms'] as number);
  if (found.redirect) process.stderr.write(`${name}: ${found.redirect.reason}; using the master at ${found.address}\n`);
  return found.address;
}

async function dropSlotAt(address: string, req: { followerId: number; force: boolean }, security: ClientSecurity, timeoutMs: number): Promise<DropSlotResponse__Output> {
  const client = masterClient(address, security);
  try {
    return await callUnary<DropSlotResponse__Output>((o, cb) => client.DropSlot(req, o, cb), timeoutMs, { role: 'master', address });
  } finally {
    client.close();
  }
}

/**
 * replication-admin drop-slot <id>. With several --master addresses, a NOT_MASTER from the
 * master found (deposed since it answered its status) naming another master is followed
 * once: a refused DropSlot dropped nothing, so this never drops twice.
 */
export async function dropSlotCommand(argv: Record<string, unknown>, name: string): Promise<void> {
  const security = clientSecurityFromArgv(argv);
  const timeoutMs = argv['timeout-ms'] as number;
  // Found among several, or through etcd: a NOT_MASTER naming another master is followed once.
  const several = argv.etcd !== undefined || (argv.master as string[]).length > 1;
  let address = await adminMaster(argv, name);
  const id = argv.id as number;
  const req = { followerId: id, force: argv.force as boolean };
  let res: DropSlotResponse__Output;
  try {
    res = await dropSlotAt(address, req, security, timeoutMs);
  } catch (err) {
    const named = isReplicatorError(err, ErrorCode.NOT_MASTER) ? err.details.masterAddress : undefined;
    if (!several || !named || named === address) throw err;
    process.stderr.write(`${name}: ${address} answered NOT_MASTER; dropping the slot on the master at ${named}\n`);
    address = named;
    res = await dropSlotAt(address, req, security, timeoutMs);
  }
  if (argv.json) {
    process.stdout.write(JSON.stringify({ followerId: id, appliedSeq: res.appliedSeq, wasConnected: res.wasConnected, slotLost: res.slotLost, firstSeq: res.firstSeq }) + '\n');
    return;
  }
  process.stdout.write(
    `dropped the replication slot of follower ${id} (it had applied up to seq ${res.appliedSeq}${res.slotLost ? '; the slot was already lost' : ''}${res.wasConnected ? '; its stream was ended' : ''}); ` +
      `the log no longer waits for it from the next retention pass (firstSeq is ${res.firstSeq})\n`,
  );
}
