/**
 * What a terminal shows after the given output: enough of a terminal to check a progress
 * bar and the log lines around it (carriage return, newline, erase line, erase to the end
 * of the line, overwriting; colours and other escape sequences are dropped). A line torn
 * by a bar drawn over it shows here exactly as an operator would see it.
 */
export function screenLines(output: string): string[] {
  const lines: string[] = [''];
  let row = 0;
  let col = 0;
  const put = (ch: string) => {
    const line = lines[row];
    lines[row] = line.length < col ? line + ' '.repeat(col - line.length) + ch : line.slice(0, col) + ch + line.slice(col + 1);
    col++;
  };
  for (let i = 0; i < output.length; i++) {
    const ch = output[i];
    if (ch === '\r') col = 0;
    else if (ch === '\n') {
      row++;
      col = 0;
      if (lines.length <= row) lines.push('');
    } else if (ch === '\x1b') {
      const m = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(output.slice(i, i + 16));
      if (!m) continue;
      i += m[0].length - 1;
      if (m[2] === 'K') lines[row] = m[1] === '2' ? '' : m[1] === '1' ? ' '.repeat(col) + lines[row].slice(col) : lines[row].slice(0, col);
    } else put(ch);
  }
  return lines;
}

/** Every frame of the bar ever drawn (each text written after a carriage return or erase), colours dropped. */
export function frames(output: string, prefix: string): string[] {
  const plain = output.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '\r');
  return plain.split(/[\r\n]/).filter((f) => f.startsWith(prefix));
}
