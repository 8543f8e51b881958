/**
 * The `swarmnet` command's one grammar and its newcomer-facing errors (issue
 * 14), driven as child processes against a gateway process.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Controller, inspectGateway } from "../runtime/index.js";
import { cli, running, startCliGateway, type CliResult } from "./cli-helpers.js";
import { within } from "./helpers.js";

/** Runs `swarmnet` command lines a few at a time (tsx start-ups are slow on a loaded machine), in order. */
async function clis<const L extends readonly (readonly string[])[]>(lines: L): Promise<{ -readonly [K in keyof L]: CliResult }> {
  const results: CliResult[] = [];
  // Two at a time: the gateway's pool has two slots (a third would be refused with POOL_FULL).
  for (let i = 0; i < lines.length; i += 2) results.push(...(await Promise.all(lines.slice(i, i + 2).map((l) => cli(l, { ms: 45_000 })))));
  return results as { -readonly [K in keyof L]: CliResult };
}

const SUBS = fileURLToPath(new URL("./fixtures/newcomer-subroutines.ts", import.meta.url));

describe("swarmnet CLI - one grammar, errors that say what to do", () => {
  let work: string;
  let endpoint: string;
  let hostPort: string;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "swarmnet-cli14-"));
    await mkdir(join(work, "data"));
    await mkdir(join(work, "reports", "2026", "q4"), { recursive: true });
    await writeFile(join(work, "reports", "summary.txt"), "summary\n");
    await writeFile(join(work, "reports", "2026", "q4", "november.csv"), "a,b\n1,2\n");
    const started = await startCliGateway(
      ["--root", join(work, "data"), "--download-dir", join(work, "incoming"), "--subroutines", SUBS, "--pool", "2", "--admin"],
      { teardown: (fn) => stops.push(fn) },
    );
    endpoint = started.endpoint;
    hostPort = endpoint.slice("tcp://".length);
  });

  afterAll(async () => {
    for (const stop of stops) await stop();
    await rm(work, { recursive: true, force: true });
  });

  it("list - names and whether each streams, by positional or -g; both ways at once must agree", { timeout: 120_000 }, async () => {
    const [positional, flag, json, twice, same] = await clis([
      ["list", hostPort],
      ["list", "-g", endpoint],
      ["list", hostPort, "--json"],
      ["list", hostPort, "-g", "127.0.0.1:1"],
      ["list", hostPort, "-g", endpoint],
    ]);
    expect(positional.code).toBe(0);
    expect(positional.stdout).toBe("mount_usage\tcall\nreadings\tstream\nslow\tcall\nstatus\tcall\ntemperature\tcall\n");
    expect(flag.stdout).toBe(positional.stdout);
    expect(JSON.parse(json.stdout)).toContainEqual({ name: "readings", stream: true });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("the gateway is given twice, differently");
    expect(same.code).toBe(0);
  });

  it(
    "list takes no pool slot: a --pool 1 gateway whose slot another client holds still lists, to the CLI and the API (SWARMNET_GATEWAY, SWARMNET_DEBUG)",
    { timeout: 120_000 },
    async () => {
      const small = await startCliGateway(["--subroutines", SUBS, "--pool", "1"]);
      const holder = new Controller({ gateways: [small.endpoint] });
      try {
        await holder.getClient();
        // SWARMNET_DEBUG=1: the error's stack follows its line.
        const full = await cli(["call", "mount_usage", "-g", small.endpoint], { env: { SWARMNET_DEBUG: "1" }, ms: 45_000 });
        expect(full.code).toBe(4); // the only slot is taken ...
        expect(full.stderr).toMatch(/swarmnet call: SWARMNET_POOL_FULL: .*\nPoolFullError: [^\n]*\n\s+at /);
        // SWARMNET_GATEWAY: the gateway when none is given.
        const listed = await cli(["list"], { env: { SWARMNET_GATEWAY: small.endpoint.slice("tcp://".length) }, ms: 45_000 });
        expect(listed.stderr).toBe(""); // ... and the listing does not need it
        expect(listed.code).toBe(0);
        expect(listed.stdout).toBe("mount_usage\tcall\nreadings\tstream\nslow\tcall\nstatus\tcall\ntemperature\tcall\n");
        const api = new Controller({ gateways: [small.endpoint] });
        try {
          expect((await api.listSubroutines()).map((s) => `${s.name}\t${s.stream ? "stream" : "call"}\n`).join("")).toBe(listed.stdout);
        } finally {
          await api.close();
        }
      } finally {
        await holder.close();
      }
    },
  );

  it(
    "a gateway as the first argument of call/get/put is refused with the -g form; ping 127.0.0.1 means port 1857",
    { timeout: 120_000 },
    async () => {
      const [call, get, ping] = await clis([
        ["call", hostPort, "mount_usage"],
        ["get", hostPort, "--folder", "x"],
        ["ping", "127.0.0.1", "--connect-timeout", "300"],
      ]);
      for (const r of [call, get]) {
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`"${hostPort}" looks like a gateway: give it with -g`);
      }
      // Nothing of ours listens on 1857; whatever answers or not, the endpoint tried is 1857.
      expect(`${ping.stdout}${ping.stderr}`).toContain("tcp://127.0.0.1:1857");
    },
  );

  it("call/stream --as read pynetwork-style packed bytes: int, float, double, string, json", { timeout: 120_000 }, async () => {
    const [int, float, double, json, string, streamed, bad] = await clis([
      ["call", "mount_usage", "--as", "int", "-g", endpoint],
      ["call", "temperature", "--as", "float", "-g", endpoint],
      ["call", "temperature", "--as", "double", "-g", endpoint],
      ["call", "status", "--as", "json", "-g", endpoint],
      ["call", "status", "--as", "string", "-g", endpoint],
      ["stream", "readings", "2", "--as", "string", "-g", endpoint],
      ["call", "status", "--as", "decimal", "-g", endpoint],
    ]);
    expect(int.stdout).toBe("47\n");
    expect(float.stdout, float.stderr).toBe("21.5\n");
    expect(double.stdout).toBe("21.5\n");
    expect(JSON.parse(json.stdout)).toEqual({ ok: true, disks: 2 });
    expect(string.stdout).toBe('{"ok":true,"disks":2}\n');
    expect(streamed.stdout).toBe("0\treading 0\n1\treading 1\n");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--as must be one of int, float, double, string, json");
  });

  it("a slow subroutine - exit 5 and a deadline message naming it and --timeout, not 'unreachable'", async () => {
    const r = await cli(["call", "slow", "5000", "--timeout", "300", "-g", endpoint]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/SWARMNET_TIMEOUT: no answer to call slow from gateway tcp:\/\/127\.0\.0\.1:\d+ within 300 ms \(--timeout\)/);
  });

  it("nothing listening - exit 3, 'connection refused' said while retrying, then the error", async () => {
    const r = await cli(["ping", "127.0.0.1:9", "--connect-timeout", "600"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("swarmnet ping: connection refused at tcp://127.0.0.1:9: nothing listens there");
    expect(r.stderr).toContain("retrying until --connect-timeout");
    expect(r.stderr).toMatch(/SWARMNET_CONNECTION_REFUSED: .*retried for 600 ms \(--connect-timeout\)/);
  });

  it("--swarm N beyond the free slots uses what it gets and says so; a full pool names --pool and --wait; --wait gets a freed slot", async () => {
    await writeFile(join(work, "data", "one.txt"), "one\n");
    const swarm = await cli(["get", "--files", "one.txt", "--swarm", "4", "--out", join(work, "got"), "-q", "-g", endpoint]);
    expect(swarm.code).toBe(0);
    expect(swarm.stderr).toContain("asked for a swarm of 4, the gateway's pool had 2 free slots: using 2");
    expect(swarm.stdout).toContain("over a swarm of 2");
    // Both slots held (by this process), then a third client.
    const holder = new Controller({ gateways: [endpoint] });
    try {
      const held = [await holder.getClient(), await holder.getClient()];
      const full = await cli(["call", "mount_usage", "-g", endpoint]);
      expect(full.code).toBe(4);
      expect(full.stderr).toMatch(/SWARMNET_POOL_FULL: pool is full: all 2 handlers are taken.*--pool N.*--wait MS/);
      // --wait: queued at the gateway until a slot is freed.
      const waiting = running(["call", "mount_usage", "--as", "int", "--wait", "30000", "-g", endpoint]);
      await until(() => snapshotWaiting(), 20_000);
      await held[0]!.closeHandler();
      const waited = await within(waiting.exited, 30_000, "the waiting call");
      expect(waited.code).toBe(0);
      expect(waited.stdout).toBe("47\n");
    } finally {
      await holder.close();
    }
  }, 90_000);

  it("put of a folder keeps its layout under --dirname; local path problems exit 2", { timeout: 120_000 }, async () => {
    const put = await cli(["put", "--dirname", "backup", join(work, "reports"), "-q", "-g", endpoint]);
    expect(put.code).toBe(0);
    expect(put.stdout).toMatch(/^uploaded 2 files/);
    expect(await readFile(join(work, "incoming", "backup", "reports", "summary.txt"), "utf8")).toBe("summary\n");
    expect(await readFile(join(work, "incoming", "backup", "reports", "2026", "q4", "november.csv"), "utf8")).toBe("a,b\n1,2\n");
    await writeFile(join(work, "not-a-folder"), "x");
    const [missing, outIsFile, root] = await clis([
      ["put", "--dirname", "x", join(work, "no-such-file"), "-g", endpoint],
      ["get", "--files", "one.txt", "--out", join(work, "not-a-folder"), "-g", endpoint],
      ["gateway", "--port", "0", "--root", join(work, "no-such-dir")],
    ]);
    expect([missing.code, outIsFile.code, root.code]).toEqual([2, 2, 2]);
    expect(missing.stderr).toContain("no such file or folder");
    expect(outIsFile.stderr).toContain("--out");
    expect(root.stderr).toContain("--root");
    expect(root.stderr).toContain("no such folder");
  });

  it("inspect quits on q", async () => {
    const p = running(["inspect", hostPort, "--interval", "100"], { input: "q\n" });
    const r = await p.exited;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`gateway ${endpoint}`);
  });

  it("close stops the gateway (pynetwork's close_gateway)", async () => {
    const other = await startCliGateway([], { teardown: (fn) => stops.push(fn) });
    const r = await cli(["close", other.endpoint.slice("tcp://".length)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`gateway ${other.endpoint} is stopping`);
    const exit = await other.gateway.exited;
    expect(exit.code).toBe(0);
    expect(exit.stdout).toContain("gateway stopped");
  });

  /** Whether a client waits in the gateway's queue for a slot (the admin snapshot, which takes no slot). */
  async function snapshotWaiting(): Promise<boolean> {
    return (await inspectGateway(endpoint)).supervisor.waiting > 0;
  }

  /** Polls `check` (each poll a round trip) until it holds, bounded by `ms`. */
  async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (let i = 0; i < 200 && Date.now() < deadline; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("a client never started waiting for a slot");
  }
});
