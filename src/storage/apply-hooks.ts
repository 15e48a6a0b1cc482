/**
 * What a replica store tells an observer (the follower's audit, src/follower/apply-audit.ts)
 * about its position, each call made only once what it reports is in the store:
 *
 *   opened(appliedSeq)          the store was opened, or reopened after a failed write,
 *                               and holds entries up to appliedSeq
 *   applied(firstSeq, lastSeq)  these entries were committed, durably when the store syncs
 *   snapshot(seq)               a snapshot taken at seq replaced the store's data
 *
 * Declared here, not in the follower, because storage never imports the follower. A hook
 * that throws fails the store call that made it, after the write it reports.
 */
export interface ApplyHooks {
  opened(appliedSeq: bigint): void;
  applied(firstSeq: bigint, lastSeq: bigint): void;
  snapshot(seq: bigint): void;
}
