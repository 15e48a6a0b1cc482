import fs from 'node:fs';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import type { ApplyHooks } from '../storage/apply-hooks.js';

/**
 * Audit mode (`--audit-file`): a follower appends one line per event to a plain text
 * file, so a test (or an operator after an incident) can prove from the outside that no
 * seq was ever applied twice, skipped, or applied out of order, across any number of
 * crashes and restarts of the process:
 *
 *   open <appliedSeq>            the store was opened; it had applied up to this seq
 *   apply <firstSeq> <lastSeq>   these entries were committed to the store
 *   snapshot <seq>               a snapshot taken at this seq replaced the store's data
 *
 * `apply` and `snapshot` lines are written only after their batch is durable, each line
 * in one write to a file opened with O_APPEND, so a crash can lose the newest line (the
 * batch committed, the process died before auditing it; the next `open` then names a seq
 * past the last audited one) but never tears a line or records a batch that was not
 * committed.
 * Checking: every `apply` starts at exactly the previous position + 1, and every `open`
 * or `snapshot` is at or past the previous position (never behind it: that would
 * re-apply seqs).
 */
export class ApplyAudit implements ApplyHooks {
  private constructor(
    private fd: number | undefined,
    private readonly file: string,
  ) {}

  static open(file: string): ApplyAudit {
    try {
      return new ApplyAudit(fs.openSync(file, 'a'), file);
    } catch (err) {
      throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot open audit file ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  opened(appliedSeq: bigint): void {
    this.line(`open ${appliedSeq}`);
  }

  applied(firstSeq: bigint, lastSeq: bigint): void {
    this.line(`apply ${firstSeq} ${lastSeq}`);
  }

  snapshot(seq: bigint): void {
    this.line(`snapshot ${seq}`);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private line(text: string): void {
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, `${text}\n`);
    } catch (err) {
      // The data is committed either way; a missing line shows up as a gap when checked.
      throw new ReplicatorError(ErrorCode.INTERNAL, `cannot write audit file ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }
}
