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
    const name = p.file.length > 32 ? `...${p.file.slice(-29)}` : p.file;
    const line =
      `${this.#label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ` +
      `${p.filesDone}/${p.filesTotal} files ${mib(p.totalBytes)}/${mib(p.totalSize)} MiB ${mib(rate)} MiB/s ${name}`;
    const columns = this.#stream.columns ?? 120;
    this.#stream.write(`\r${line.slice(0, columns - 1)}\u001b[K`);
  }
}
