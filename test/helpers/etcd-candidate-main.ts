/**
 * A candidate for leader in a process of its own, so a test can kill -9 it: only a dead
 * process stops a lease without telling etcd (closing a client does not end its keepalive
 * stream). Started by EtcdCandidate (etcd-candidate.ts) with one JSON argument; writes one
 * JSON line per event to stdout, with `at`, the time on this process's monotonic clock.
 */
import { connectEtcd } from '../../src/coordination/etcd-connection.js';
import { LeaderLease } from '../../src/coordination/leader-lease.js';
import { MemberPublisher } from '../../src/coordination/member-registry.js';
import type { MemberRecord } from '../../src/coordination/records.js';

interface CandidateArgs {
  endpoints: string;
  cluster: string;
  nodeId: number;
  address: string;
  ttlSeconds: number;
  /** Publishes a member record too (appliedSeq as a decimal string). */
  member?: Omit<MemberRecord, 'appliedSeq'> & { appliedSeq: string };
}

const args = JSON.parse(process.argv[2]) as CandidateArgs;
const say = (event: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, at: performance.now(), ...fields })}\n`);

const conn = connectEtcd({ endpoints: args.endpoints, cluster: args.cluster });
const lease = new LeaderLease(conn, { nodeId: args.nodeId, address: args.address, ttlSeconds: args.ttlSeconds });
lease.on('elected', (l) => say('elected', { epoch: l.epoch }));
lease.on('renewed', (deadline) => say('renewed', { deadline }));
lease.on('fenced', () => say('fenced'));
lease.on('lost', (err) => say('lost', { error: err.message }));
if (args.member) {
  const publisher = new MemberPublisher(conn, { ...args.member, appliedSeq: BigInt(args.member.appliedSeq) }, { ttlSeconds: args.ttlSeconds });
  publisher.once('published', () => say('published'));
}
say('campaigning');
