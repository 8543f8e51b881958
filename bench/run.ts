/**
 * `npm run bench [-- W1 W2 ...] [options]`: runs the workloads for swarmnet
 * and its peers, prints one table, writes latest.json and latest.svg.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { buildReport, formatTable, machineInfo, versions, writeReport } from "./report.js";
import { REPO_ROOT, runWorkloads } from "./runner.js";
import { SYSTEMS, type SystemName } from "./workload.js";
import { findWorkload, WORKLOADS } from "./workloads/index.js";

const DEFAULT_RUNS = 5;
const QUICK_RUNS = 3;
const QUICK_SCALE = 0.1;
const DEFAULT_RUN_TIMEOUT_S = 120;
const QUICK_COLD_RUNS = 1;

const USAGE = `usage: npm run bench -- [WORKLOAD...] [options]

  WORKLOAD          ${WORKLOADS.map((w) => w.id).join(", ")} (default: all but the opt-in ${WORKLOADS.filter((w) => w.optIn)
    .map((w) => w.id)
    .join(", ")})
  --quick           every workload at a tenth of its size, ${QUICK_RUNS} runs (a smoke check)
  --runs N          measured runs per workload and system (default ${DEFAULT_RUNS}, quick ${QUICK_RUNS})
  --cold N          cold runs (fresh server and client processes, no warm-up) per workload
                    and system, a row of their own (default: as --runs; quick ${QUICK_COLD_RUNS}; 0: none)
  --scale F         size factor, 1 = full (default 1, quick ${QUICK_SCALE})
  --rtt MS          run through a relay that adds MS of round trip (MS/2 each way)
  --systems A,B     only these of ${SYSTEMS.join(", ")}
  --timeout S       seconds allowed per run (default ${DEFAULT_RUN_TIMEOUT_S})
  --out DIR         where latest.json and latest.svg go (default bench/results)`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function positiveNumber(name: string, text: string | undefined, fallback: number, { integer = false } = {}): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    fail(`--${name} must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(text)}`);
  }
  return value;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        quick: { type: "boolean", default: false },
        runs: { type: "string" },
        cold: { type: "string" },
        scale: { type: "string" },
        rtt: { type: "string" },
        systems: { type: "string" },
        timeout: { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }

  const workloads =
    positionals.length === 0
      ? WORKLOADS.filter((w) => !w.optIn)
      : positionals.map((id) => findWorkload(id) ?? fail(`unknown workload ${id}`));
  const systems = values.systems === undefined ? [...SYSTEMS] : values.systems.split(",").map((s) => s.trim());
  for (const s of systems) {
    if (!(SYSTEMS as readonly string[]).includes(s)) fail(`unknown system ${JSON.stringify(s)}`);
  }
  const quick = values.quick;
  const runs = positiveNumber("runs", values.runs, quick ? QUICK_RUNS : DEFAULT_RUNS, { integer: true });
  const options = {
    quick,
    workloads,
    systems: systems as SystemName[],
    runs,
    coldRuns: values.cold === "0" ? 0 : positiveNumber("cold", values.cold, quick ? QUICK_COLD_RUNS : runs, { integer: true }),
    scale: positiveNumber("scale", values.scale, quick ? QUICK_SCALE : 1),
    rttMs: values.rtt === undefined ? 0 : positiveNumber("rtt", values.rtt, 0),
    runTimeoutMs: positiveNumber("timeout", values.timeout, DEFAULT_RUN_TIMEOUT_S) * 1000,
    log: (line: string) => process.stderr.write(`${line}\n`),
  };
  const outDir = path.resolve(values.out ?? path.join(REPO_ROOT, "bench", "results"));

  const startedAt = new Date();
  const machine = machineInfo();
  const results = await runWorkloads(options);
  const report = buildReport(options, startedAt, results, machine, await versions());
  process.stdout.write(`\n${formatTable(report)}\n\n`);
  const written = await writeReport(outDir, report);
  process.stdout.write(
    `wrote ${path.relative(process.cwd(), written.json)}, ${path.relative(process.cwd(), written.svg)} and ${path.relative(process.cwd(), written.md)}\n`,
  );

  const failed = results.some((w) => Object.values(w.systems).some((o) => o.status === "failed"));
  process.exitCode = failed ? 1 : 0;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
