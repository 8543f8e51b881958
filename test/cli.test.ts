import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GatewayInspection } from "../runtime/index.js";
import { SUBROUTINES, cli, running, startCliGateway, type CliProcess } from "./cli-helpers.js";
import { tempDir, within } from "./helpers.js";

/** Buffer equality without a deep-equal walk over millions of elements. */
const sameBytes = (a: Buffer, b: Buffer): boolean => a.equals(b);

const COMMANDS = ["gateway", "ping", "list", "call", "send", "stream", "get", "put", "inspect", "close", "keygen"];

describe("swarmnet CLI - usage", () => {
  it("--help on every subcommand - usage, options and exit codes, exit 0", async () => {
    // A few at a time: a dozen tsx start-ups at once can take longer than their bound on a loaded machine.
    const results: Awaited<ReturnType<typeof cli>>[] = [];
    for (let i = 0; i < COMMANDS.length; i += 4)
      results.push(...(await Promise.all(COMMANDS.slice(i, i + 4).map((c) => cli([c, "--help"])))));
    results.forEach((r, i) => {
      expect(r.code, COMMANDS[i]).toBe(0);
      expect(r.stdout).toContain(`Usage: swarmnet ${COMMANDS[i]}`);
      expect(r.stdout).toContain("Exit codes:");
    });
    const top = await cli(["--help"]);
    expect(top.code).toBe(0);
    for (const c of COMMANDS) expect(top.stdout).toContain(`  ${c} `);
  });

  it("bad usage - unknown command, unknown flag, missing or malformed arguments exit 2 and say why", async () => {
    const [none, unknown, flag, missing, json, port, endpoint, subs] = await Promise.all([
      cli([]),
      cli(["frobnicate"]),
      cli(["call", "echo", "--bogus"]),
      cli(["call"]),
      cli(["call", "echo", "not-json"]),
      cli(["gateway", "--port", "abc"]),
      cli(["ping", "http://x:1"]),
      cli(["gateway", "--port", "0", "--subroutines", "./no-such-module.js"]),
    ]);
    for (const r of [none, unknown, flag, missing, json, port, endpoint, subs]) expect(r.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect(flag.stderr).toMatch(/Unknown option '--bogus'[\s\S]*swarmnet call --help/);
    expect(missing.stderr).toContain("missing subroutine NAME");
    expect(json.stderr).toContain("must be JSON");
    expect(port.stderr).toContain("--port must be an integer");
    expect(endpoint.stderr).toContain("only tcp:// endpoints");
    expect(subs.stderr).toContain("cannot load");
  });

  it("unreachable gateway - ping, call, list and inspect exit 3 within the connect timeout, saying the connection was refused", async () => {
    const results = await Promise.all([
      cli(["ping", "127.0.0.1:9", "--connect-timeout", "300"]),
      cli(["call", "echo", "-g", "tcp://127.0.0.1:9", "--connect-timeout", "300"]),
      cli(["list", "127.0.0.1:9", "--connect-timeout", "300"]),
      cli(["inspect", "127.0.0.1:9", "--json", "--timeout", "300"]),
    ]);
    for (const r of results) expect(r.code).toBe(3);
    // Clients and sessionless requests (list, inspect) alike hear from the socket monitor that nothing listens.
    for (const r of results) expect(r.stderr).toContain("SWARMNET_CONNECTION_REFUSED: connection refused at tcp://127.0.0.1:9");
  });

  it("npx swarmnet - the package's bin runs from the checkout", async () => {
    const { execFile } = await import("node:child_process");
    const stdout = await within(
      new Promise<string>((resolve, reject) =>
        execFile("npx", ["--no-install", "swarmnet", "keygen", "--json"], { timeout: 20_000 }, (e, out) => (e ? reject(e) : resolve(out))),
      ),
      25_000,
      "npx swarmnet",
    );
    const keys = JSON.parse(stdout) as { publicKey: string; secretKey: string };
    expect(keys.publicKey).toHaveLength(40);
    expect(keys.secretKey).toHaveLength(40);
  });
});

describe("swarmnet CLI - against a gateway process", () => {
  let work: string;
  let endpoint: string;
  let gateway: CliProcess;
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "swarmnet-cli-"));
    await mkdir(join(work, "data", "logs", "old"), { recursive: true });
    for (let i = 0; i < 6; i++) await writeFile(join(work, "data", "logs", `app-${i}.log`), randomBytes(10_000 + i * 1_000));
    await writeFile(join(work, "data", "logs", "old", "app-old.log"), "old log\n");
    await writeFile(join(work, "data", "logs", "readme.txt"), "not a log\n");
    await writeFile(join(work, "data", "big.bin"), randomBytes(3 * 1024 * 1024));
    const started = await startCliGateway(
      ["--root", join(work, "data"), "--download-dir", join(work, "incoming"), "--subroutines", SUBROUTINES, "--pool", "6", "--admin"],
      { teardown: (fn) => stops.push(fn) },
    );
    endpoint = started.endpoint;
    gateway = started.gateway;
  });

  afterAll(async () => {
    for (const stop of stops) await stop();
    await rm(work, { recursive: true, force: true });
  });

  it("gateway - prints the real port for --port 0 and the subroutines it loaded", () => {
    expect(endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(gateway.stdout).toMatch(/subroutines: add, counter, echo, fail, hello, length, slow, ticks/);
    expect(gateway.stdout).toContain("admin on");
  });

  it("ping - endpoint as host:port and as tcp://host:port", async () => {
    const [plain, tcp] = await Promise.all([cli(["ping", endpoint.slice("tcp://".length), "-c", "3"]), cli(["ping", "-g", endpoint])]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/pong from tcp:\/\/127\.0\.0\.1:\d+ \(handler \d+\): "ping"; 3 round trips/);
    expect(tcp.code).toBe(0);
  });

  it("call - JSON args and kwargs in, values, text bytes and JSON out", async () => {
    const [sum, hello, echo, json] = await Promise.all([
      cli(["call", "add", "2", "40", "-g", endpoint]),
      cli(["call", "hello", '"swarm"', "-g", endpoint]),
      cli(["call", "echo", "[1,2]", '{"a":true}', "null", "-g", endpoint]),
      cli(["call", "hello", '"x"', "--json", "-g", endpoint]),
    ]);
    expect([sum.code, hello.code, echo.code, json.code]).toEqual([0, 0, 0, 0]);
    expect(sum.stdout).toBe("42\n");
    expect(hello.stdout).toBe("hello swarm\n");
    expect(echo.stdout).toBe('[[1,2],{"a":true},null]\n');
    expect(JSON.parse(json.stdout)).toEqual({ bytes: Buffer.from("hello x").toString("hex") });
  });

  it("call - a remote throw and an unknown subroutine exit 4 with the error code", async () => {
    const [thrown, missing] = await Promise.all([
      cli(["call", "fail", '"disk on fire"', "-g", endpoint]),
      cli(["call", "no_such_thing", "-g", endpoint]),
    ]);
    expect(thrown.code).toBe(4);
    expect(thrown.stderr).toContain("SWARMNET_REMOTE_ERROR: disk on fire");
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("SWARMNET_SUBROUTINE_NOT_FOUND");
  });

  it("send - bytes from a file and from stdin reach kwargs.buffer", async () => {
    const file = join(work, "payload.bin");
    await writeFile(file, randomBytes(12_345));
    const [fromFile, fromStdin, noFile] = await Promise.all([
      cli(["send", "length", file, "-g", endpoint]),
      cli(["send", "length", "-", "-g", endpoint], { input: "LED on" }),
      cli(["send", "length", join(work, "missing.bin"), "-g", endpoint]),
    ]);
    expect(fromFile.stdout).toBe("12345\n");
    expect(fromStdin.stdout).toBe("6\n");
    expect(noFile.code).toBe(2);
  });

  it("stream - prints items as they arrive, in order, then the end", async () => {
    const [lines, json, limited] = await Promise.all([
      cli(["stream", "counter", "5", "0", "-g", endpoint]),
      cli(["stream", "counter", "3", "0", "--json", "-g", endpoint]),
      cli(["stream", "ticks", "1", "--limit", "4", "-g", endpoint]),
    ]);
    expect(lines.code).toBe(0);
    expect(lines.stdout.trim().split("\n")).toEqual([0, 1, 2, 3, 4].map((i) => `${i}\t{"i":${i},"square":${i * i}}`));
    expect(lines.stderr).toContain("end of stream after 5 items");
    expect(
      json.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([0, 1, 2].map((i) => [i, { i, square: i * i }]));
    expect(limited.code).toBe(0);
    expect(limited.stdout).toBe("0\ttick 0\n1\ttick 1\n2\ttick 2\n3\ttick 3\n");
  });

  it("stream - Ctrl-C aborts cleanly: exit 130, the generator's finally runs on the gateway", async () => {
    const closedBefore = gateway.stdout.split("ticks generator closed").length;
    const stream = running(["stream", "ticks", "10", "-g", endpoint]);
    await stream.waitFor(/^3\ttick 3$/m);
    const result = await stream.stop("SIGINT");
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/aborted after \d+ items/);
    await gateway.waitFor(new RegExp(`(ticks generator closed[\\s\\S]*){${closedBefore}}`));
  });

  it("get - a folder over a swarm of 3 into --out, byte for byte", async () => {
    const out = await tempDir();
    const r = await cli(["get", "--folder", ".", "--swarm", "3", "--out", out, "-g", endpoint]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/downloaded 9 files \([\d.]+ MiB; [\d.]+ MiB sent\) in [\d.]+ s, [\d.]+ MiB\/s over a swarm of 3/);
    expect(sameBytes(await readFile(join(out, "big.bin")), await readFile(join(work, "data", "big.bin")))).toBe(true);
    expect(await readFile(join(out, "logs", "old", "app-old.log"), "utf8")).toBe("old log\n");
    expect((await readdir(join(out, "logs"))).sort()).toEqual(
      [...[0, 1, 2, 3, 4, 5].map((i) => `app-${i}.log`), "old", "readme.txt"].sort(),
    );
  });

  it("get - --regex filters a folder, --files lists files, a path outside the roots exits 4 (the gateway refuses it)", async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    const [regex, files, refused, missing] = await Promise.all([
      cli(["get", "--folder", "logs", "--regex", "^app-\\d\\.log$", "--out", a, "-g", endpoint, "--list"]),
      cli(["get", "--files", "logs/readme.txt", "big.bin", "--out", b, "-g", endpoint, "--verify"]),
      // Absolute, outside every root: only the gateway knows its roots ('..' is refused locally, exit 2: cli-files.test.ts).
      cli(["get", "--files", "/etc/passwd", "-g", endpoint]),
      cli(["get", "--folder", "nope", "-g", endpoint]),
    ]);
    expect(regex.code, regex.stderr).toBe(0);
    expect((await readdir(a)).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `app-${i}.log`));
    expect(regex.stdout.split("\n").filter((l) => l.startsWith(a))).toHaveLength(6);
    expect(files.code, files.stderr).toBe(0);
    expect((await readdir(b)).sort()).toEqual(["big.bin", "readme.txt"]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain("SWARMNET_PATH_NOT_ALLOWED");
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain("SWARMNET_FILE_NOT_FOUND");
  });

  it("put - uploads files over a swarm into the gateway's download dir", async () => {
    const src = await tempDir();
    const names = ["one.bin", "two.bin", "three.txt"];
    for (const [i, n] of names.entries()) await writeFile(join(src, n), randomBytes(50_000 * (i + 1)));
    const r = await cli(["put", "--dirname", "backup", ...names.map((n) => join(src, n)), "--swarm", "2", "-g", endpoint]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/uploaded 3 files \([\d.]+ MiB; [\d.]+ MiB sent\) to backup\/ in [\d.]+ s/);
    for (const n of names)
      expect(sameBytes(await readFile(join(work, "incoming", "backup", n)), await readFile(join(src, n))), n).toBe(true);
    // Refused before connecting: bad usage.
    const bad = await cli(["put", "--dirname", "../escape", join(src, "one.bin"), "-g", endpoint]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`--dirname "../escape" contains '..'`);
  });

  it("inspect --json - busy handlers show their state, request and progress; the inspector takes no slot", async () => {
    const slow = running(["call", "slow", "2500", "-g", endpoint]);
    const ticks = running(["stream", "ticks", "5", "-g", endpoint]);
    await ticks.waitFor(/^2\ttick 2$/m);
    let snapshot: GatewayInspection | undefined;
    const busy = (s: GatewayInspection): boolean =>
      s.handlers.some((h) => h.state === "busy.batchGet" && h.request?.name === "slow") &&
      s.handlers.some((h) => h.state === "busy.streaming" && h.request?.name === "ticks");
    // Each round is a real request to the gateway: no sleeping, and bounded.
    for (let round = 0; round < 40 && (snapshot === undefined || !busy(snapshot)); round++) {
      const r = await cli(["inspect", endpoint, "--json"]);
      expect(r.code).toBe(0);
      snapshot = JSON.parse(r.stdout) as GatewayInspection;
    }
    expect(snapshot && busy(snapshot)).toBe(true);
    const s = snapshot!;
    expect(s.state).toBe("running");
    expect(s.supervisor.state).toMatch(/accepting/);
    expect(s.supervisor.poolSize).toBe(2); // the two callers; not the inspector
    expect(s.supervisor.maxPoolSize).toBe(6);
    const streaming = s.handlers.find((h) => h.state === "busy.streaming")!;
    expect(streaming.request).toMatchObject({ kind: "stream", name: "ticks" });
    expect(streaming.progress).toMatchObject({ kind: "stream", name: "ticks" });
    expect((streaming.progress as { itemsSent: number }).itemsSent).toBeGreaterThan(0);
    const batch = s.handlers.find((h) => h.state === "busy.batchGet")!;
    expect(batch.request).toMatchObject({ kind: "batchGet", name: "slow" });
    expect(batch.restarts).toBe(0);
    expect(s.security.handshakes).toBeGreaterThan(0);

    await ticks.stop("SIGINT");
    expect((await within(slow.exited, 15_000, "slow call")).stdout).toBe("done\n");
  });

  it("inspect - the live view redraws as handlers change state", async () => {
    const view = running(["inspect", endpoint, "--interval", "50"]);
    await view.waitFor(/supervisor running\.accepting {2}pool \d+\/6/);
    const ticks = running(["stream", "ticks", "5", "-g", endpoint]);
    await view.waitFor(/├─ \d+ +busy\.streaming +#\d+ stream ticks|└─ \d+ +busy\.streaming +#\d+ stream ticks/);
    await ticks.stop("SIGINT");
    const result = await view.stop("SIGINT");
    expect(result.code).toBe(0);
  });

  it("gateway - a plain JS module's exports are served (generators stream); SIGTERM stops it gracefully with exit 0", async () => {
    const dir = await tempDir();
    const subs = join(dir, "subs.js"); // ESM syntax, no package.json: Node detects the module type
    await writeFile(subs, "export const add = (a, b) => a + b;\nexport function* upto(n) { for (let i = 0; i < n; i++) yield [i, i]; }\n");
    const extra = await startCliGateway(["--subroutines", subs]);
    expect(extra.gateway.stdout).toContain("2 subroutines: add, upto");
    expect((await cli(["call", "add", "1", "1", "-g", extra.endpoint])).stdout).toBe("2\n");
    expect((await cli(["stream", "upto", "2", "-g", extra.endpoint])).stdout).toBe("0\t0\n1\t1\n");
    const result = await extra.gateway.stop("SIGTERM");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("gateway stopped");
  });

  it("inspect - a gateway without --admin refuses with SWARMNET_ADMIN_DISABLED, exit 4", async () => {
    const plain = await startCliGateway(["--subroutines", SUBROUTINES]);
    const r = await cli(["inspect", plain.endpoint, "--json"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("SWARMNET_ADMIN_DISABLED");
  });
});

describe("swarmnet CLI - keys and CURVE", () => {
  it("keygen --out, then a CURVE gateway lets the authorized client ping and inspect, and not a stranger", async () => {
    const dir = await tempDir();
    const made = await Promise.all(["gw", "laptop", "stranger"].map((n) => cli(["keygen", "--out", join(dir, n)])));
    for (const r of made) expect(r.code).toBe(0);
    expect((await stat(join(dir, "gw.key"))).mode & 0o777).toBe(0o600);
    const started = await startCliGateway([
      "--admin",
      "--curve-secret",
      join(dir, "gw.key"),
      "--curve-public",
      join(dir, "gw.pub"),
      "--authorized-keys",
      join(dir, "laptop.pub"),
    ]);
    expect(started.gateway.stdout).toContain("CURVE on");
    const keys = (who: string): string[] => [
      "--curve-public",
      join(dir, `${who}.pub`),
      "--curve-secret",
      join(dir, `${who}.key`),
      "--server-key",
      join(dir, "gw.pub"),
    ];
    const [ok, refused, plain] = await Promise.all([
      cli(["ping", started.endpoint, ...keys("laptop")]),
      cli(["inspect", started.endpoint, "--json", "--timeout", "500", ...keys("stranger")]),
      cli(["ping", started.endpoint, "--connect-timeout", "500"]),
    ]);
    expect(ok.code).toBe(0);
    expect(refused.code).toBe(3);
    expect(plain.code).toBe(3);
    const inspected = await cli(["inspect", started.endpoint, "--json", ...keys("laptop")]);
    expect(inspected.code).toBe(0);
    expect((JSON.parse(inspected.stdout) as GatewayInspection).security.authFailures).toBeGreaterThanOrEqual(1);
  });
});
