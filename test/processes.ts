import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { onTestFinished } from "vitest";
import { within } from "./helpers.js";

/** Starts a TS fixture in its own process; resolves with the port it printed. Killed when the test ends. */
export async function startProcess(fixture: string, args: readonly (string | number)[] = []): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", fixture, ...args.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const port = await within(
    new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", (code) => reject(new Error(`${fixture} exited with ${code} before printing its port`)));
    }),
    30_000,
    `${fixture} to start`,
  );
  return { child, port };
}

/** Kills a child and waits for it to be gone. */
export async function kill(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  await within(exited, 10_000, "child exit");
}

/** A loopback port that was free a moment ago (for restarting a gateway on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
