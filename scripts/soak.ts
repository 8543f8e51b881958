/**
 * `npm run soak -- --minutes N [--clients 6] [--lease 5000]`: a gateway (its
 * own process) and a controller's clients working through a fault-injecting
 * relay (test/fault-relay.ts) while random faults hit them: connection resets,
 * stalls shorter than the lease, handler crashes, and client churn (a client
 * closed and a new one made). Prints calls, stream items and file bytes sent
 * versus received, what was lost (must be 0: every item in order, every call
 * answered once with its own value or failed with a typed error, every
 * transfer byte-identical), and the gateway's RSS over time.
 * Exits 1 if anything was lost.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Controller, SwarmnetError, type Client } from "../runtime/index.js";
import { FaultRelay } from "../test/fault-relay.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "1" },
    clients: { type: "string", default: "6" },
    lease: { type: "string", default: "5000" },
  },
});
const minutes = Number(values.minutes);
const workers = Number(values.clients);
const leaseMs = Number(values.lease);
if (!(minutes > 0) || !(workers > 0) || !(leaseMs >= 1000))
  throw new Error("usage: npm run soak -- --minutes N [--clients 6] [--lease 5000]");

const FILE_BYTES = 8 * 1024 * 1024;
const STREAM_ITEMS = 20_000;
const CALLS_PER_JOB = 50;

const dir = await mkdtemp(join(tmpdir(), "swarmnet-soak-"));
const served = join(dir, "served");
await mkdir(served, { recursive: true });
const source = randomBytes(FILE_BYTES);
const sourceHash = createHash("sha256").update(source).digest("hex");
// One file per worker: workers download into the same folder at the same time.
for (let w = 0; w < workers; w++) await writeFile(join(served, `blob${w}.bin`), source);
await writeFile(join(dir, "upload.bin"), source);

const child = spawn(process.execPath, ["--import", "tsx", "scripts/soak-gateway.ts", served, join(dir, "uploads"), String(leaseMs)], {
  stdio: ["ignore", "pipe", "inherit"],
});
const port = await new Promise<number>((resolve, reject) => {
  let out = "";
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    const m = /PORT (\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  child.once("exit", (code) => reject(new Error(`soak gateway exited with ${code}`)));
});
const relay = new FaultRelay({ targetPort: port });
await relay.start();
const controller = new Controller({
  gateways: [relay.endpoint],
  timeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  downloadDir: join(dir, "down"),
});
// Observation goes around the relay, so faults never hide the figures.
const observer = await new Controller({ port, timeoutMs: 30_000 }).getClient();

const t = {
  calls: { sent: 0, answered: 0, failedTyped: 0, wrong: 0 },
  items: { expected: 0, received: 0, streams: 0, failedTyped: 0, outOfOrder: 0 },
  bytes: { sent: 0, received: 0, transfers: 0, failedTyped: 0, corrupt: 0 },
  faults: { resets: 0, stalls: 0, crashes: 0, churn: 0 },
  untyped: 0,
};
const errors = new Map<string, number>();
function typed(err: unknown): boolean {
  if (err instanceof SwarmnetError) {
    errors.set(err.code, (errors.get(err.code) ?? 0) + 1);
    return true;
  }
  t.untyped++;
  console.error("untyped failure:", err);
  return false;
}

const deadline = Date.now() + minutes * 60_000;
let stopping = false;

async function job(client: Client, w: number, round: number): Promise<void> {
  const kind = round % 4;
  if (kind === 0) {
    for (let i = 0; i < CALLS_PER_JOB; i++) {
      const k = w * 1e9 + round * 1e3 + i;
      t.calls.sent++;
      try {
        const v = await client.getSubroutineBatch<number>(i % 2 ? "echo" : "later", [k]);
        if (v === k) t.calls.answered++;
        else t.calls.wrong++;
      } catch (err) {
        if (typed(err)) t.calls.failedTyped++;
        return;
      }
    }
  } else if (kind === 1) {
    t.items.streams++;
    t.items.expected += STREAM_ITEMS;
    let next = 0;
    try {
      for await (const [ident] of client.stream("count", [STREAM_ITEMS])) {
        if (ident !== next) t.items.outOfOrder++;
        next = ident + 1;
        t.items.received++;
      }
    } catch (err) {
      if (typed(err)) t.items.failedTyped++;
      t.items.expected -= STREAM_ITEMS - next; // a typed failure ends the stream: the rest was never promised
    }
  } else if (kind === 2) {
    t.bytes.sent += FILE_BYTES;
    try {
      const [path] = await client.getFilesFromGateway({ files: [`blob${w}.bin`] });
      const got = await readFile(path!);
      if (createHash("sha256").update(got).digest("hex") === sourceHash) t.bytes.received += got.length;
      else t.bytes.corrupt++;
      t.bytes.transfers++;
      await rm(path!, { force: true });
    } catch (err) {
      if (typed(err)) t.bytes.failedTyped++;
      t.bytes.sent -= FILE_BYTES;
    }
  } else {
    t.bytes.sent += FILE_BYTES;
    try {
      await client.sendFilesToGateway({ dirname: `w${w}`, files: [join(dir, "upload.bin")] });
      const got = await readFile(join(dir, "uploads", `w${w}`, "upload.bin"));
      if (createHash("sha256").update(got).digest("hex") === sourceHash) t.bytes.received += got.length;
      else t.bytes.corrupt++;
      t.bytes.transfers++;
    } catch (err) {
      if (typed(err)) t.bytes.failedTyped++;
      t.bytes.sent -= FILE_BYTES;
    }
  }
}

async function worker(w: number): Promise<void> {
  let client: Client | undefined;
  for (let round = w; !stopping; round++) {
    try {
      client ??= await controller.getClient();
    } catch (err) {
      typed(err);
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    await job(client, w, round);
    if (client.state === "closed" || client.state === "failed" || Math.random() < 0.1) {
      if (client.state !== "closed" && client.state !== "failed") t.faults.churn++;
      await client.closeHandler().catch(() => undefined);
      client = undefined;
    }
  }
  await client?.closeHandler().catch(() => undefined);
}

async function chaos(): Promise<void> {
  while (!stopping) {
    await new Promise((r) => setTimeout(r, 1_000 + Math.random() * 3_000));
    if (stopping) return;
    const roll = Math.random();
    if (roll < 0.5) {
      relay.reset();
      t.faults.resets++;
    } else if (roll < 0.8) {
      relay.stall(200 + Math.random() * Math.min(2_000, leaseMs / 3));
      t.faults.stalls++;
    } else {
      const victim = await observer.getSubroutineBatch<number>("crashOne", [observer.handlerId ?? 0]).catch(() => 0);
      if (victim) t.faults.crashes++;
    }
  }
}

const rss: string[] = [];
async function monitor(): Promise<void> {
  const every = Math.max(5_000, Math.min(60_000, (minutes * 60_000) / 10));
  const start = Date.now();
  while (!stopping) {
    const s = await observer.getSubroutineBatch<{ rss: number; executions: number; pool: number }>("stats");
    const line = `t=${((Date.now() - start) / 1000).toFixed(0)}s gateway rss=${(s.rss / 2 ** 20).toFixed(1)} MiB pool=${s.pool} calls=${t.calls.answered}/${t.calls.sent} items=${t.items.received} bytes=${(t.bytes.received / 2 ** 20).toFixed(0)} MiB faults=${JSON.stringify(t.faults)}`;
    rss.push(line);
    console.log(line);
    await new Promise((r) => setTimeout(r, Math.min(every, Math.max(0, deadline - Date.now()))));
    if (Date.now() >= deadline) stopping = true;
  }
}

const running = [monitor(), chaos(), ...Array.from({ length: workers }, (_, w) => worker(w))];
await Promise.all(running);
const final = await observer.getSubroutineBatch<{ rss: number; executions: number; delivery: Record<string, number> }>("stats");
await controller.close();
child.kill("SIGTERM");
await relay.close();
await rm(dir, { recursive: true, force: true });

const lostItems = t.items.expected - t.items.received + t.items.outOfOrder;
const lostCalls = t.calls.sent - t.calls.answered - t.calls.failedTyped + t.calls.wrong;
const lostBytes = t.bytes.sent - t.bytes.received;
console.log("\nsoak summary");
console.log(
  `  calls   sent ${t.calls.sent}, answered ${t.calls.answered}, failed typed ${t.calls.failedTyped}, wrong ${t.calls.wrong}, lost ${lostCalls}; gateway executions ${final.executions} (at most once: <= sent)`,
);
console.log(
  `  items   expected ${t.items.expected}, received ${t.items.received} in ${t.items.streams} streams, out of order ${t.items.outOfOrder}, streams failed typed ${t.items.failedTyped}, lost ${lostItems}`,
);
console.log(
  `  bytes   sent ${t.bytes.sent}, received byte-identical ${t.bytes.received} in ${t.bytes.transfers} transfers, failed typed ${t.bytes.failedTyped}, corrupt ${t.bytes.corrupt}, lost ${lostBytes}`,
);
console.log(`  faults  ${JSON.stringify(t.faults)}; typed errors ${JSON.stringify(Object.fromEntries(errors))}; untyped ${t.untyped}`);
console.log(`  gateway delivery ${JSON.stringify(final.delivery)}; rss ${(final.rss / 2 ** 20).toFixed(1)} MiB at the end`);
const bad = lostItems + lostCalls + lostBytes + t.bytes.corrupt + t.untyped + (final.executions > t.calls.sent ? 1 : 0);
console.log(bad === 0 ? "  lost 0" : `  LOST OR WRONG: ${bad}`);
process.exit(bad === 0 ? 0 : 1);
