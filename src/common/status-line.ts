/**
 * The one status line (the follower's progress bar) at the bottom of a terminal, and the
 * log lines that share that terminal without tearing it.
 *
 * The line is redrawn in place: carriage return, erase the line, the text (cut to the
 * terminal's width, since a wrapped line could no longer be erased). A log line is
 * written with the status line out of the way: erased first, drawn again below it after.
 * Nothing moves the cursor anywhere else (no saved positions, no lines up), so what a
 * log line printed is never drawn over, and clear() leaves nothing behind: the line is
 * cleared before the process exits, whatever the path to the exit.
 */
export type TerminalStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** Column 0, then erase the whole line. */
const ERASE = '\r\x1b[2K';
const DEFAULT_COLUMNS = 80;

export class StatusLine {
  /** The text on screen; undefined while nothing is shown. */
  private shown: string | undefined;
  private exitHook: (() => void) | undefined;

  constructor(private readonly stream: TerminalStream) {}

  /** Only a terminal gets a status line; elsewhere show() does nothing. */
  get isTerminal(): boolean {
    return Boolean(this.stream.isTTY);
  }

  get visible(): boolean {
    return this.shown !== undefined;
  }

  /** Columns a status line may use: one short of the terminal's, as a line that fills the last column wraps on some terminals. */
  get width(): number {
    return Math.max(1, (this.stream.columns || DEFAULT_COLUMNS) - 1);
  }

  /** Draws text as the status line (cut to width), replacing what it showed. */
  show(text: string): void {
    if (!this.isTerminal) return;
    const width = this.width;
    const line = text.length > width ? text.slice(0, width) : text;
    if (!this.exitHook) {
      this.exitHook = () => this.clear();
      process.once('exit', this.exitHook);
    }
    this.shown = line;
    this.stream.write(ERASE + line);
  }

  /** Erases the status line; the cursor is left at column 0 of an empty line. */
  clear(): void {
    if (this.exitHook) process.off('exit', this.exitHook);
    this.exitHook = undefined;
    if (this.shown === undefined) return;
    this.shown = undefined;
    this.stream.write(ERASE);
  }

  /** Runs write (a complete log line for the same terminal) with the status line erased, then draws it again. */
  around(write: () => void): void {
    const text = this.shown;
    if (text === undefined) return write();
    this.stream.write(ERASE);
    try {
      write();
    } finally {
      // A log line ends with a newline: the status line goes on the fresh line below it.
      if (this.shown === text) this.stream.write(ERASE + text);
    }
  }
}

const lines = new WeakMap<object, StatusLine>();

/** The status line of a stream: one per stream, shared by whoever draws it and whoever logs around it. */
export function statusLineFor(stream: TerminalStream): StatusLine {
  let line = lines.get(stream);
  if (!line) {
    line = new StatusLine(stream);
    lines.set(stream, line);
  }
  return line;
}

/**
 * A log destination whose every line is written around the status line of `terminal`
 * (stderr, where the progress bar is drawn): for logs that go to the same terminal.
 */
export function aroundStatusLine<T extends { write(chunk: string): unknown }>(dest: T, terminal: TerminalStream = process.stderr): { write(chunk: string): void } {
  const line = statusLineFor(terminal);
  return {
    write: (chunk: string) => line.around(() => void dest.write(chunk)),
  };
}
