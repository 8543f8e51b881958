/**
 * Micro-benchmark of envelope validation: ns per message for the hot kinds,
 * `parseClientMessage` / `parseGatewayMessage` on already-decoded envelopes
 * (CBOR decoding is not measured). Not a test: run it by hand before and after
 * a change to protocol/messages.ts and compare.
 *
 *   npx tsx scripts/bench-parse.ts [rounds]     (default 7 rounds; prints the median of each kind)
 *   git show main:protocol/messages.ts > protocol/old-messages.ts
 *   BENCH_PARSE_MODULE=../protocol/old-messages.ts npx tsx scripts/bench-parse.ts
 */
import * as current from "../protocol/messages.js";

// BENCH_PARSE_MODULE=path/to/other-messages.ts compares another version of the module (e.g. from `git show`).
const other = process.env["BENCH_PARSE_MODULE"];
const { parseClientMessage, parseGatewayMessage } = (other === undefined ? current : await import(other)) as typeof current;

type Case = { readonly name: string; readonly side: "client" | "gateway"; readonly value: Record<string, unknown>; readonly raw: boolean };

const items: Array<readonly [number, number]> = Array.from({ length: 64 }, (_, i) => [i, 64] as const);
const cases: Case[] = [
  { name: "ping", side: "client", value: { type: "ping", id: 7, data: "hello" }, raw: false },
  { name: "pong", side: "gateway", value: { type: "pong", id: 7, data: "hello" }, raw: false },
  {
    name: "rpc.call",
    side: "client",
    value: { type: "rpc.call", id: 7, name: "mount_usage", mode: "get", args: [123], kwargs: { kw: 1 } },
    raw: false,
  },
  { name: "rpc.result", side: "gateway", value: { type: "rpc.result", id: 7, raw: true }, raw: true },
  { name: "stream.items(64)", side: "gateway", value: { type: "stream.items", id: 7, items }, raw: true },
  { name: "stream.credit", side: "client", value: { type: "stream.credit", id: 7, items: 64, bytes: 4096 }, raw: false },
  { name: "file.data", side: "client", value: { type: "file.data", id: 7, f: 3, o: 1 << 20 }, raw: true },
  { name: "file.data(gw)", side: "gateway", value: { type: "file.data", id: 7, f: 3, o: 1 << 20 }, raw: true },
  { name: "file.credit", side: "client", value: { type: "file.credit", id: 7, bytes: 1 << 20, files: 1 }, raw: false },
  { name: "heartbeat", side: "client", value: { type: "heartbeat", id: 0 }, raw: false },
];

const N = 1_000_000;
let sink = 0;

function once(c: Case): number {
  const parse = c.side === "client" ? parseClientMessage : parseGatewayMessage;
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += parse(c.value, c.raw).id;
  return Number(process.hrtime.bigint() - start) / N;
}

const rounds = Number(process.argv[2] ?? 7);
const results = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    const ns = once(c);
    if (r > 0) results.set(c.name, [...(results.get(c.name) ?? []), ns]); // round 0 warms up
  }
}
for (const [name, runs] of results) {
  runs.sort((a, b) => a - b);
  const median = runs[Math.floor(runs.length / 2)] ?? 0;
  console.log(
    `${name.padEnd(18)} ${median.toFixed(1).padStart(7)} ns/message   (min ${runs[0]?.toFixed(1)}, max ${runs[runs.length - 1]?.toFixed(1)})`,
  );
}
if (sink === -1) console.log(sink);
