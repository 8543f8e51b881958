/**
 * A TCP relay that simulates a long link: it forwards bytes both ways and
 * holds every chunk for a fixed one-way delay before passing it on. Bandwidth
 * is not limited; only latency is added, so a protocol that waits for a round
 * trip per request pays for it and one that pipelines does not.
 *
 * From the runner: `npm run bench -- --rtt 20` puts one in front of each server.
 * Standalone:
 *
 *     tsx bench/relay.ts --target 127.0.0.1:1857 [--port 0] [--delay 10]
 */
import net from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { BENCH_HOST } from "./workload.js";

/** @see RelayOptions.delayMs */
export const DEFAULT_ONE_WAY_DELAY_MS = 10;
/** Past this many bytes held in one direction, stop reading from the sender. */
const MAX_HELD_BYTES = 64 * 1024 * 1024;

export interface RelayOptions {
  readonly targetHost: string;
  readonly targetPort: number;
  /** Port to listen on; 0 lets the OS pick (read it back from `start()`). @default 0 */
  readonly port?: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
  /** Delay added to every chunk in each direction. @default 10 */
  readonly delayMs?: number;
}

export class LatencyRelay {
  readonly #options: Required<RelayOptions>;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor(options: RelayOptions) {
    this.#options = { port: 0, host: BENCH_HOST, delayMs: DEFAULT_ONE_WAY_DELAY_MS, ...options };
    const { delayMs } = this.#options;
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(`delayMs must be a number >= 0, got ${String(delayMs)}`);
    }
    // Half-open: one side's end of stream is forwarded (late) to the other, and
    // the other may still answer.
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#relay(socket));
  }

  /** Listens and resolves with the port. */
  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off("error", reject);
        resolve((this.#server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops listening and drops every relayed connection. */
  stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #relay(downstream: net.Socket): void {
    const upstream = net.connect({
      port: this.#options.targetPort,
      host: this.#options.targetHost,
      allowHalfOpen: true,
    });
    for (const socket of [downstream, upstream]) {
      this.#sockets.add(socket);
      // The relay adds exactly the configured delay, not Nagle's on top.
      socket.setNoDelay(true);
      socket.on("error", () => {
        downstream.destroy();
        upstream.destroy();
      });
      socket.on("close", () => this.#sockets.delete(socket));
    }
    forwardWithDelay(downstream, upstream, this.#options.delayMs);
    forwardWithDelay(upstream, downstream, this.#options.delayMs);
  }
}

/** A chunk on its way, or `null` for the sender's end of stream. */
interface Held {
  readonly due: number;
  readonly chunk: Buffer | null;
}

/**
 * Pipes `from` into `to`, each chunk `delayMs` after it arrived, in order.
 * Reading pauses while too much is held or `to` is not draining, which bounds
 * memory the way a real link's window would.
 */
function forwardWithDelay(from: net.Socket, to: net.Socket, delayMs: number): void {
  const held: Held[] = [];
  let head = 0;
  let heldBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let waitingForDrain = false;
  let paused = false;

  const updateFlow = (): void => {
    const pause = waitingForDrain || heldBytes > MAX_HELD_BYTES;
    if (pause === paused) return;
    paused = pause;
    if (pause) from.pause();
    else from.resume();
  };

  const release = (): void => {
    timer = undefined;
    const now = performance.now();
    while (head < held.length && held[head]!.due <= now) {
      const { chunk } = held[head++]!;
      if (chunk === null) {
        to.end();
        continue;
      }
      heldBytes -= chunk.length;
      if (!to.destroyed && !to.write(chunk) && !waitingForDrain) {
        waitingForDrain = true;
        to.once("drain", () => {
          waitingForDrain = false;
          updateFlow();
        });
      }
    }
    // Drop released entries (and the buffers they hold) when the queue empties,
    // or now and then when it never does; not on every chunk.
    if (head === held.length) {
      held.length = 0;
      head = 0;
    } else if (head > 1024 && head * 2 > held.length) {
      held.splice(0, head);
      head = 0;
    }
    schedule();
    updateFlow();
  };

  const schedule = (): void => {
    const next = held[head];
    if (timer || !next) return;
    timer = setTimeout(release, Math.max(0, next.due - performance.now()));
  };

  const hold = (chunk: Buffer | null): void => {
    held.push({ due: performance.now() + delayMs, chunk });
    if (chunk) heldBytes += chunk.length;
    schedule();
  };

  from.on("data", (chunk: Buffer) => {
    hold(chunk);
    updateFlow();
  });
  from.on("end", () => hold(null));
  to.on("close", () => {
    if (timer) clearTimeout(timer);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      target: { type: "string" },
      port: { type: "string", default: "0" },
      delay: { type: "string", default: String(DEFAULT_ONE_WAY_DELAY_MS) },
    },
  });
  const match = /^(.+):(\d+)$/.exec(values.target ?? "");
  if (!match) throw new Error("usage: tsx bench/relay.ts --target HOST:PORT [--port 0] [--delay 10]");
  const relay = new LatencyRelay({
    targetHost: match[1]!,
    targetPort: Number(match[2]),
    port: Number(values.port),
    delayMs: Number(values.delay),
  });
  const port = await relay.start();
  process.stdout.write(`relay ${BENCH_HOST}:${port} -> ${values.target}, ${values.delay} ms each way\n`);
  const stop = (): void => void relay.stop().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
