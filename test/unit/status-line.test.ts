import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { aroundStatusLine, StatusLine, statusLineFor } from '../../src/common/status-line.js';
import { screenLines } from '../helpers/terminal-screen.js';

function terminal(columns = 40): { stream: PassThrough & { isTTY: boolean; columns: number }; text: () => string } {
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('status line', () => {
  it('redraws in place, cut to the terminal width, and clear() leaves an empty line', () => {
    const term = terminal(20);
    const line = new StatusLine(term.stream);
    line.show('first');
    line.show('a line much longer than twenty columns');
    assert.deepEqual(screenLines(term.text()), ['a line much longer '], 'cut one column short of the width: never wraps');
    assert.equal(line.visible, true);
    line.clear();
    assert.equal(line.visible, false);
    assert.deepEqual(screenLines(term.text()), ['']);
    line.clear();
    assert.deepEqual(screenLines(term.text()), [''], 'clearing twice is harmless');
  });

  it('draws nothing off a terminal, and lines written around it pass through unchanged', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const line = statusLineFor(out);
    line.show('bar');
    aroundStatusLine({ write: (c: string) => out.write(c) }, out).write('{"msg":"x"}\n');
    assert.equal(text, '{"msg":"x"}\n');
  });

  it('a line written around it is whole on screen, with the status line below it again', () => {
    const term = terminal();
    const line = statusLineFor(term.stream);
    assert.equal(statusLineFor(term.stream), line, 'one per stream');
    const logs = aroundStatusLine({ write: (c: string) => term.stream.write(c) }, term.stream);
    line.show('50% |#####     |');
    logs.write('snapshot installed\n');
    logs.write('followerId: 4\n');
    assert.deepEqual(screenLines(term.text()), ['snapshot installed', 'followerId: 4', '50% |#####     |']);
    line.clear();
    logs.write('stopped\n');
    assert.deepEqual(screenLines(term.text()), ['snapshot installed', 'followerId: 4', 'stopped', '']);
  });

  it('clears itself when the process exits', () => {
    const term = terminal();
    const line = new StatusLine(term.stream);
    const before = process.listenerCount('exit');
    line.show('50%');
    assert.equal(process.listenerCount('exit'), before + 1);
    process.listeners('exit').at(-1)!.call(process, 0);
    assert.deepEqual(screenLines(term.text()), ['']);
    assert.equal(process.listenerCount('exit'), before, 'the hook is removed once the line is cleared');
  });
});
