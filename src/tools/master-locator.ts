import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { StatusResponse__Output } from '../wire/generated/levelreplicator/v1/StatusResponse.js';
import type { ClientSecurity } from '../wire/security.js';
import { askEveryStatus, chooseMaster, describeAnswer, newestEpoch, roleOf, STATUS_PROBE_TIMEOUT_MS, type FoundMaster, type StatusAnswer } from './master-finder.js';

/**
 * The master for a client that reads from it or administers it (get-data --master,
 * store-digest --master, replication-admin drop-slot and switchover with several
 * addresses), where a write would prove nothing: a write to a node that is not the master
 * is refused (push-data follows that refusal once), but every follower answers Get and
 * Digest from its own store. So each address is asked for its Status, also when there is
 * only one, and a node is used only once it answers as the master of the newest epoch the
 * answers know of. Otherwise the master named by the answers is asked, once:
 *
 * - one address, a follower or a deposed master that names the master: that master (the
 *   redirect a write would get as NOT_MASTER);
 * - several addresses: the master among them at the highest epoch (chooseMaster, as
 *   push-data finds it: none, or two, is MASTER_UNAVAILABLE); if another address knows of
 *   a newer epoch than that master's, the master may have been deposed without knowing it,
 *   and the master named by a node of the newest epoch is asked instead.
 *
 * A redirected-to node must itself answer as the master of at least the newest epoch known;
 * a second redirect is never followed (no loops).
 */

/** The master found, and the redirect that led to it. */
export type LocatedMaster = FoundMaster & { redirect?: Redirect };

export interface Redirect {
  from: string;
  to: string;
  /** Why `from` was not used, in a few words (for stderr). */
  reason: string;
}

/** After the first answers: the master, or the one address to ask next. */
export type FirstStep = { master: FoundMaster } | { redirect: Redirect; newestEpoch: number; answers: StatusAnswer[] };

/** The newest epoch one node knows of: its epoch, seen epoch or (a follower's) own epoch. */
function knownEpoch(s: StatusResponse__Output): number {
  return Math.max(s.epoch, s.seenEpoch, s.self?.epoch ?? 0);
}

/** The master a follower or a deposed master names, when it names another node. */
export function namedMaster(a: StatusAnswer): string | undefined {
  if (!a.status || roleOf(a.status) === 'master') return undefined;
  const named = a.status.self?.masterAddress || a.status.masterAddress;
  return named && named !== a.address ? named : undefined;
}

/** Every answer an authentication or TLS refusal of one code: the user must fix that, not the addresses. */
function refusedByAll(answers: readonly StatusAnswer[]): ReplicatorError | undefined {
  const auth: string[] = [ErrorCode.UNAUTHENTICATED, ErrorCode.PERMISSION_DENIED, ErrorCode.TLS_FAILED];
  const errors = answers.flatMap((a) => (a.error ? [a.error] : []));
  if (errors.length === 0 || errors.length !== answers.length || !auth.includes(errors[0].code) || !errors.every((e) => e.code === errors[0].code)) return undefined;
  return answers.length === 1 ? errors[0] : new ReplicatorError(errors[0].code, `every address refused the status call: ${answers.map(describeAnswer).join('; ')}`);
}

export function firstStep(answers: StatusAnswer[]): FirstStep {
  const refused = refusedByAll(answers);
  if (refused) throw refused;
  if (answers.length === 1) {
    const [a] = answers;
    if (a.error) throw a.error;
    if (roleOf(a.status) === 'master') return { master: { address: a.address, status: a.status, newestEpoch: knownEpoch(a.status), answers } };
    const to = namedMaster(a);
    if (!to) throw new ReplicatorError(ErrorCode.NOT_MASTER, `${describeAnswer(a)}: not the master, and it names no master to go to`);
    return { redirect: { from: a.address, to, reason: describeAnswer(a) }, newestEpoch: newestEpoch(answers), answers };
  }
  const found = chooseMaster(answers);
  if (found.status.epoch >= found.newestEpoch) return { master: found };
  // Another node knows of a newer epoch: this master may be deposed without knowing it yet.
  const newest = found.newestEpoch;
  const knower = answers.find((a) => a.status && knownEpoch(a.status) === newest && namedMaster(a) !== undefined && namedMaster(a) !== found.address);
  const why = `${found.address} is the master of epoch ${found.status.epoch}, but ${knower?.address ?? answers.find((a) => a.status && knownEpoch(a.status) === newest)?.address} knows of epoch ${newest}`;
  if (!knower) throw new ReplicatorError(ErrorCode.MASTER_UNAVAILABLE, `${why} and names no other master: add the master of epoch ${newest} to --master (${answers.map(describeAnswer).join('; ')})`);
  return { redirect: { from: found.address, to: namedMaster(knower)!, reason: why }, newestEpoch: newest, answers };
}

/** The redirected-to node's answer: the master of at least the newest epoch known, or MASTER_UNAVAILABLE (no second redirect). */
export function afterRedirect(step: Extract<FirstStep, { redirect: Redirect }>, answer: StatusAnswer): LocatedMaster {
  const { redirect } = step;
  if (answer.status && roleOf(answer.status) === 'master' && answer.status.epoch >= step.newestEpoch) {
    const answers = [...step.answers, answer];
    return { address: answer.address, status: answer.status, newestEpoch: Math.max(step.newestEpoch, knownEpoch(answer.status)), answers, redirect };
  }
  const stale = answer.status && roleOf(answer.status) === 'master' ? ` (epoch ${answer.status.epoch}, older than epoch ${step.newestEpoch})` : '';
  const code = answer.error && refusedByAll([answer]) ? answer.error.code : ErrorCode.MASTER_UNAVAILABLE;
  throw new ReplicatorError(code, `${redirect.reason}; the master it names does not answer as the master: ${describeAnswer(answer)}${stale} (not following a second redirect)`);
}

/** The master of the newest epoch among addresses (see above); each Status asked within min(timeoutMs, 2 s). */
export async function locateMaster(addresses: readonly string[], security: ClientSecurity, timeoutMs: number): Promise<LocatedMaster> {
  const probeMs = Math.min(timeoutMs, STATUS_PROBE_TIMEOUT_MS);
  const step = firstStep(await askEveryStatus(addresses, security, probeMs));
  if ('master' in step) return step.master;
  const [answer] = await askEveryStatus([step.redirect.to], security, probeMs);
  return afterRedirect(step, answer);
}
