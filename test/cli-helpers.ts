/** Drives the `swarmnet` command as a user would: child processes, their output and exit codes. */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";
import { within } from "./helpers.js";

export const BIN = fileURLToPath(new URL("../bin/swarmnet.js", import.meta.url));
export const SUBROUTINES = fileURLToPath(new URL("./fixtures/cli-subroutines.ts", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `swarmnet` child with its output so far. */
export class CliProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<CliResult>;
  readonly #waiters = new Set<() => void>();

  /** `bin`: another `swarmnet` executable than this checkout's (e.g. an installed package's). */
  constructor(args: readonly string[], options: { cwd?: string; input?: string | Uint8Array; env?: NodeJS.ProcessEnv; bin?: string } = {}) {
    this.child = spawn(process.execPath, [options.bin ?? BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, SWARMNET_QUIET: "1", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdout!.on("data", (d: Buffer) => {
      this.stdout += d.toString();
      for (const wake of this.#waiters) wake();
    });
    this.child.stderr!.on("data", (d: Buffer) => {
      this.stderr += d.toString();
      for (const wake of this.#waiters) wake();
    });
    if (options.input !== undefined) this.child.stdin!.end(options.input);
    else this.child.stdin!.end();
    this.exited = new Promise((resolve) => {
      this.child.once("close", (code, signal) => {
        for (const wake of this.#waiters) wake();
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first match of `pattern` in stdout (or stderr with `from`), bounded by `ms`. */
  waitFor(pattern: RegExp, ms = 15_000, from: "stdout" | "stderr" = "stdout"): Promise<RegExpExecArray> {
    return within(
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = (): void => {
          const m = pattern.exec(this[from]);
          if (m) {
            this.#waiters.delete(check);
            resolve(m);
          } else if (!this.running && this.child.stdout!.readableEnded) {
            this.#waiters.delete(check);
            reject(new Error(`process ended without printing ${pattern}:\n${this.stdout}\n${this.stderr}`));
          }
        };
        this.#waiters.add(check);
        check();
      }),
      ms,
      `${pattern} from swarmnet`,
    );
  }

  /** Sends `signal` and waits (bounded) for the exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM", ms = 10_000): Promise<CliResult> {
    if (this.running) this.child.kill(signal);
    return within(this.exited, ms, `swarmnet to exit on ${signal}`);
  }
}

/** Runs `swarmnet ARGS` to completion (bounded) and returns its exit code and output. */
export async function cli(
  args: readonly string[],
  options: { cwd?: string; input?: string | Uint8Array; env?: NodeJS.ProcessEnv; ms?: number } = {},
): Promise<CliResult> {
  const p = new CliProcess(args, options);
  onTestFinished(() => {
    if (p.running) p.child.kill("SIGKILL");
  });
  return within(p.exited, options.ms ?? 20_000, `swarmnet ${args.join(" ")}`);
}

/** Starts `swarmnet gateway --port 0 ARGS` and waits for its "listening on" line; stopped after the test (or `teardown`). */
export async function startCliGateway(
  args: readonly string[],
  options: { cwd?: string; teardown?: (fn: () => Promise<unknown>) => void } = {},
): Promise<{ gateway: CliProcess; endpoint: string; port: number }> {
  const gateway = new CliProcess(["gateway", "--port", "0", ...args], options);
  (options.teardown ?? onTestFinished)(async () => {
    if (gateway.running) await gateway.stop("SIGTERM").catch(() => gateway.child.kill("SIGKILL"));
  });
  const m = await gateway.waitFor(/listening on (tcp:\/\/[^\s]+:(\d+))/, 30_000);
  return { gateway, endpoint: m[1]!, port: Number(m[2]) };
}

/** A `swarmnet ARGS` child killed when the test ends, if it is still running. */
export function running(args: readonly string[], options: { cwd?: string; input?: string | Uint8Array } = {}): CliProcess {
  const p = new CliProcess(args, options);
  onTestFinished(() => {
    if (p.running) p.child.kill("SIGKILL");
  });
  return p;
}
