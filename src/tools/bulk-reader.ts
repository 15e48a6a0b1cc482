import fs from 'node:fs';
import readline from 'node:readline';
import { ErrorCode, ReplicatorError } from '../common/errors.js';
import { checkKey, checkValue } from '../wire/write-validation.js';

export interface Pair {
  key: Buffer;
  value: Buffer;
}

/**
 * Reads `key<TAB>value` lines (UTF-8) from a file, or stdin when source is `-`, in batches. Blank
 * lines are skipped; the value is everything after the first TAB and may be empty.
 * A malformed line stops the read with an error naming its line number.
 */
export async function* readPairBatches(source: string, batchSize: number): AsyncGenerator<Pair[]> {
  let input: NodeJS.ReadableStream;
  if (source === '-') {
    input = process.stdin;
  } else {
    input = fs.createReadStream(source);
    await new Promise<void>((resolve, reject) => {
      (input as fs.ReadStream).once('open', () => resolve());
      (input as fs.ReadStream).once('error', (err) =>
        reject(new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot read ${source}: ${err.message}`)),
      );
    });
  }
  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  let batch: Pair[] = [];
  let lineNo = 0;
  for await (const line of readable(lines, source)) {
    lineNo++;
    if (line === '') continue;
    const tab = line.indexOf('\t');
    if (tab < 0) throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `${source}:${lineNo}: expected key<TAB>value`);
    const key = Buffer.from(line.slice(0, tab), 'utf8');
    const value = Buffer.from(line.slice(tab + 1), 'utf8');
    checkKey(key, ` at ${source}:${lineNo}`);
    checkValue(value, ` at ${source}:${lineNo}`);
    batch.push({ key, value });
    if (batch.length >= batchSize) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** The lines, with a failed read (a directory as stdin, an I/O error) said as the input's fault, not as an internal error. */
async function* readable(lines: AsyncIterable<string>, source: string): AsyncGenerator<string> {
  try {
    yield* lines;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined) throw err;
    throw new ReplicatorError(ErrorCode.INVALID_ARGUMENT, `cannot read ${source === '-' ? 'standard input' : source}: ${(err as Error).message}`);
  }
}
