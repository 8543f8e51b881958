import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { onTestFinished } from "vitest";
import { within } from "./helpers.js";

/** Starts a TS fixture in its own process; resolves with the port it printed. Killed when the test ends. */
export async function startProcess(
  fixture: string,
  args: readonly (string | number)[] = [],
  nodeArgs: readonly string[] = [],
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", fixture, ...args.map(String)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
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

/**
 * A free loopback port below Linux's ephemeral range (32768+), for restarting
 * a gateway on the same port: inside that range the kernel may hand the port
 * to an outgoing connection (even a reconnecting client's own self-connect)
 * between the stop and the restart.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error("no free port in 20000-31999 after 50 tries");
}
