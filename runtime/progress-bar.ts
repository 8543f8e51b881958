/**
 * A small progress bar for transfers with `verbose: true`: one line on a TTY
 * (stderr), redrawn at most ten times a second; nothing at all when the
 * stream is not a TTY, so logs and pipes stay clean.
 */
import type { FileProgress } from "./files.js";

const REDRAW_MS = 100;
const WIDTH = 24;

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

/**
 * `name` cut to `width` characters in the middle, so both its start and its
 * extension stay visible: "very-long-rep…2026.tar.gz".
 */
export function shortenMiddle(name: string, width: number): string {
  const chars = [...name];
  if (chars.length <= width) return name;
  if (width <= 1) return chars.slice(0, Math.max(0, width)).join("");
  const tail = Math.floor((width - 1) / 2);
  const head = width - 1 - tail;
  return `${chars.slice(0, head).join("")}…${chars.slice(chars.length - tail).join("")}`;
}

export class ProgressBar {
  readonly #stream: NodeJS.WriteStream;
  readonly #label: string;
  readonly #startedAt = performance.now();
  #lastDraw = 0;
  #last: FileProgress | undefined;

  constructor(label: string, stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#label = label;
  }

  /** A bar for `verbose` transfers, or undefined when stderr is not a terminal. */
  static forTransfer(label: string, verbose: boolean): ProgressBar | undefined {
    return verbose && process.stderr.isTTY ? new ProgressBar(label) : undefined;
  }

  update(p: FileProgress): void {
    this.#last = p;
    const now = performance.now();
    if (now - this.#lastDraw < REDRAW_MS) return;
    this.#lastDraw = now;
    this.#draw(p);
  }

  /** Draws the final state and ends the line. */
  finish(): void {
    if (this.#last) this.#draw(this.#last);
    this.#stream.write("\n");
  }

  #draw(p: FileProgress): void {
    const fraction = p.totalSize === 0 ? 1 : Math.min(1, p.totalBytes / p.totalSize);
    const filled = Math.round(fraction * WIDTH);
    const seconds = Math.max(0.001, (performance.now() - this.#startedAt) / 1000);
    const rate = p.transferred / seconds;
    const bar =
      `${this.#label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
      `${p.filesDone}/${p.filesTotal} files ${mib(p.totalBytes)}/${mib(p.totalSize)} MiB ${mib(rate)} MiB/s `;
    const columns = this.#stream.columns ?? 120;
    // The file name gets what the terminal has left, shortened in the middle (its extension stays).
    const room = Math.max(8, columns - 1 - bar.length);
    this.#stream.write(`\r${(bar + shortenMiddle(p.file, room)).slice(0, Math.max(columns - 1, 1))}\u001b[K`);
  }
}
