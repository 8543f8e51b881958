/** What a bench run leaves behind: the table on stdout, latest.json and latest.svg. */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { RunOptions, SystemOutcome, WorkloadResult } from "./runner.js";
import { REPO_ROOT } from "./runner.js";
import { formatFigure, formatRatio } from "./lib/format.js";
import { renderRatioChart } from "./svg.js";
import { PEERS, SYSTEM_LABELS, SYSTEMS, type Metric } from "./workload.js";

/** Bumped when the JSON's shape changes in a way a reader would notice. */
export const REPORT_SCHEMA_VERSION = 2;

export interface BenchReport {
  readonly schema: typeof REPORT_SCHEMA_VERSION;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly options: {
    readonly quick: boolean;
    readonly scale: number;
    readonly runs: number;
    readonly coldRuns: number;
    readonly rttMs: number;
    readonly workloads: readonly string[];
    readonly systems: readonly string[];
  };
  readonly machine: MachineInfo;
  readonly versions: Record<string, string | null>;
  readonly workloads: readonly WorkloadResult[];
}

export interface MachineInfo {
  readonly platform: string;
  readonly release: string;
  readonly arch: string;
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly cpuMHz: number;
  readonly totalMemoryBytes: number;
  readonly loadAverage: readonly number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpuCount: cpus.length,
    cpuMHz: cpus[0]?.speed ?? 0,
    totalMemoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
  };
}

/** Node, the packages under test and the commit, so figures can be traced back. */
export async function versions(): Promise<Record<string, string | null>> {
  const packageVersion = async (dir: string): Promise<string | null> => {
    try {
      const pkg = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8")) as { version?: unknown };
      return typeof pkg.version === "string" ? pkg.version : null;
    } catch {
      return null;
    }
  };
  let commit: string | null = null;
  try {
    commit = execFileSync("git", ["rev-parse", "HEAD"], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    // Not a git checkout, or no commit yet.
  }
  const modules = path.join(REPO_ROOT, "node_modules");
  return {
    node: process.version,
    swarmnet: await packageVersion(REPO_ROOT),
    zeromq: await packageVersion(path.join(modules, "zeromq")),
    "@grpc/grpc-js": await packageVersion(path.join(modules, "@grpc", "grpc-js")),
    commit,
  };
}

export function buildReport(
  options: RunOptions & { readonly quick: boolean },
  startedAt: Date,
  results: readonly WorkloadResult[],
  machine: MachineInfo,
  versionInfo: Record<string, string | null>,
): BenchReport {
  return {
    schema: REPORT_SCHEMA_VERSION,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: {
      quick: options.quick,
      scale: options.scale,
      runs: options.runs,
      coldRuns: options.coldRuns,
      rttMs: options.rttMs,
      workloads: options.workloads.map((w) => w.id),
      systems: options.systems,
    },
    machine,
    versions: versionInfo,
    workloads: results,
  };
}

/** Writes `latest.json`, `latest.svg` and `latest.md` (the table as Markdown, for the README) into `dir`; returns their paths. */
export async function writeReport(dir: string, report: BenchReport): Promise<{ json: string; svg: string; md: string }> {
  await mkdir(dir, { recursive: true });
  const json = path.join(dir, "latest.json");
  const svg = path.join(dir, "latest.svg");
  const md = path.join(dir, "latest.md");
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(svg, renderRatioChart(report));
  await writeFile(md, formatMarkdown(report));
  return { json, svg, md };
}

/** The table as Markdown: a row per workload and metric (cold rows beside warm ones), medians, then ratios. */
export function formatMarkdown(report: BenchReport): string {
  const header = ["workload", "metric", ...SYSTEMS.map((s) => SYSTEM_LABELS[s]), ...PEERS.map((p) => `vs ${SYSTEM_LABELS[p]}`)];
  const lines = [
    `| ${header.join(" | ")} |`,
    `| --- | --- | ${header
      .slice(2)
      .map(() => "---:")
      .join(" | ")} |`,
  ];
  for (const workload of report.workloads) {
    for (const metric of workload.metrics) {
      const cells = [
        `${workload.id} ${workload.name}`,
        metricLabel(metric),
        ...SYSTEMS.map((s) => cell(workload.systems[s], metric.key)),
        ...PEERS.map((p) => formatRatio(workload.ratios[p][metric.key] ?? null)),
      ];
      lines.push(`| ${cells.join(" | ")} |`);
    }
  }
  return `${lines.join("\n")}\n`;
}

export function metricLabel(metric: Metric): string {
  return `${metric.label} ${metric.unit} ${metric.better === "higher" ? "↑" : "↓"}`;
}

function cell(outcome: SystemOutcome, key: string): string {
  switch (outcome.status) {
    case "ok": {
      const value = outcome.median[key];
      return value === undefined ? "-" : formatFigure(value);
    }
    case "failed":
      return "FAILED";
    case "skipped":
      return "skipped";
    case "n/a":
      return "-";
  }
}

/** The one table: a row per workload and metric, medians, then ratios. */
export function formatTable(report: BenchReport): string {
  const header = ["workload", "metric", ...SYSTEMS.map((s) => SYSTEM_LABELS[s]), ...PEERS.map((p) => `vs ${SYSTEM_LABELS[p]}`)];
  const rows: string[][] = [];
  for (const workload of report.workloads) {
    for (const metric of workload.metrics) {
      rows.push([
        `${workload.id} ${workload.name}`,
        metricLabel(metric),
        ...SYSTEMS.map((s) => cell(workload.systems[s], metric.key)),
        ...PEERS.map((p) => formatRatio(workload.ratios[p][metric.key] ?? null)),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  // Text columns to the left, figures to the right.
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  const { options, machine } = report;
  const conditions = [
    `median of ${options.runs} runs after a warm-up` +
      (options.coldRuns > 0
        ? `; -cold rows: median of ${options.coldRuns} run${options.coldRuns === 1 ? "" : "s"}, each in fresh processes without a warm-up`
        : ""),
    options.quick ? "quick (1/10 size)" : options.scale !== 1 ? `scale ${options.scale}` : "full size",
    options.rttMs > 0 ? `through a relay adding ${options.rttMs} ms round trip` : "loopback",
    `node ${process.version}, ${machine.cpuCount} × ${machine.cpuModel}`,
  ];
  const failures = report.workloads.flatMap((w) =>
    SYSTEMS.flatMap((s) => {
      const outcome = w.systems[s];
      return outcome.status === "failed" ? [`${w.id} ${s}: ${outcome.error.split("\n")[0] ?? ""}`] : [];
    }),
  );
  return [
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    "",
    `↑ higher is better, ↓ lower is better; vs X = swarmnet ÷ X; - = not applicable`,
    conditions.join("; "),
    ...failures.map((f) => `FAILED ${f}`),
  ].join("\n");
}
