/**
 * latest.svg: one bar per (workload metric, peer) on a log scale around
 * parity. A bar to the right (green) means swarmnet is ahead of that peer, to
 * the left (red) behind, whichever way the metric counts, so latency and
 * throughput read the same. The figure beside each bar is the table's ratio,
 * swarmnet ÷ peer. Hand-written SVG, no dependencies.
 */
import { formatRatio } from "./lib/format.js";
import type { BenchReport } from "./report.js";
import { PEERS, SYSTEM_LABELS } from "./workload.js";

const WIDTH = 1000;
const LABEL_RIGHT = 250;
const PLOT_LEFT = LABEL_RIGHT + 30;
const PLOT_RIGHT = WIDTH - 210;
const ROW = 22;
const GROUP_GAP = 12;
const TOP = 86;
/** Bars are clipped (and say so) beyond 2^MAX_EXPONENT either way. */
const MAX_EXPONENT = 7;

const AHEAD = "#2e9e5b";
const BEHIND = "#d1495b";
const INK = "#222";
const MUTED = "#777";
const GRID = "#e2e2e2";

interface Bar {
  readonly peer: string;
  /** swarmnet ÷ peer, as in the table. */
  readonly ratio: number;
  /** log2 of how many times better swarmnet is: > 0 ahead, < 0 behind. */
  readonly lead: number;
}

interface Group {
  readonly title: string;
  readonly bars: readonly Bar[];
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function text(x: number, y: number, content: string, attributes = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escapeXml(content)}</text>`;
}

function groupsOf(report: BenchReport): Group[] {
  const groups: Group[] = [];
  for (const workload of report.workloads) {
    for (const metric of workload.metrics) {
      const bars: Bar[] = [];
      for (const peer of PEERS) {
        const ratio = workload.ratios[peer][metric.key];
        if (ratio === null || ratio === undefined || !(ratio > 0)) continue;
        const lead = metric.better === "higher" ? Math.log2(ratio) : -Math.log2(ratio);
        bars.push({ peer: SYSTEM_LABELS[peer], ratio, lead });
      }
      if (bars.length === 0) continue;
      const direction = metric.better === "higher" ? "higher is better" : "lower is better";
      groups.push({ title: `${workload.id} ${workload.name}: ${metric.label} (${metric.unit}, ${direction})`, bars });
    }
  }
  return groups;
}

function tickLabel(exponent: number): string {
  if (exponent === 0) return "parity";
  return `${2 ** Math.abs(exponent)}× ${exponent > 0 ? "ahead" : "behind"}`;
}

export function renderRatioChart(report: BenchReport): string {
  const groups = groupsOf(report);
  const largest = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => Math.ceil(Math.abs(b.lead)))));
  const exponent = Math.min(MAX_EXPONENT, largest);
  const centre = (PLOT_LEFT + PLOT_RIGHT) / 2;
  const half = (PLOT_RIGHT - PLOT_LEFT) / 2;
  const xOf = (lead: number): number => centre + (Math.max(-exponent, Math.min(exponent, lead)) / exponent) * half;

  const rowsHeight = Math.max(
    ROW * 2,
    groups.reduce((h, g) => h + ROW * (g.bars.length + 1) + GROUP_GAP, 0),
  );
  const plotBottom = TOP + rowsHeight;
  const height = plotBottom + 36;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
  ];

  const { options, machine, versions } = report;
  const conditions = [
    `median of ${options.runs} runs after a warm-up`,
    options.quick ? "quick mode (1/10 size)" : options.scale !== 1 ? `scale ${options.scale}` : "full size",
    options.rttMs > 0 ? `relay adding ${options.rttMs} ms round trip` : "loopback",
    `node ${versions["node"] ?? "?"}`,
    `${machine.cpuCount} × ${machine.cpuModel}`,
    report.startedAt.slice(0, 10),
  ].join(" · ");
  out.push(
    text(16, 24, "swarmnet against each peer", `font-size="16" font-weight="600" fill="${INK}"`),
    text(16, 42, conditions, `fill="${MUTED}"`),
    `<rect x="16" y="54" width="10" height="10" fill="${AHEAD}"/>`,
    text(30, 63, "swarmnet ahead", `fill="${INK}"`),
    `<rect x="140" y="54" width="10" height="10" fill="${BEHIND}"/>`,
    text(154, 63, "swarmnet behind", `fill="${INK}"`),
    text(270, 63, "log scale; the figure is swarmnet ÷ peer, as in the table", `fill="${MUTED}"`),
  );

  if (groups.length === 0) {
    out.push(text(16, TOP + 14, "No ratios: swarmnet or every peer is missing results.", `fill="${MUTED}"`), "</svg>\n");
    return out.join("\n");
  }

  // With many ticks, label every other one so the labels do not collide.
  const labelEvery = exponent > 3 ? 2 : 1;
  for (let e = -exponent; e <= exponent; e++) {
    const x = xOf(e).toFixed(1);
    out.push(
      `<line x1="${x}" y1="${TOP - 6}" x2="${x}" y2="${plotBottom}" stroke="${e === 0 ? MUTED : GRID}" stroke-width="${e === 0 ? 1.5 : 1}"/>`,
    );
    if (e % labelEvery === 0) {
      out.push(text(xOf(e), plotBottom + 16, tickLabel(e), `text-anchor="middle" fill="${MUTED}"`));
    }
  }

  let y = TOP;
  for (const group of groups) {
    out.push(text(16, y + 14, group.title, `font-weight="600" fill="${INK}"`));
    y += ROW;
    for (const bar of group.bars) {
      const x = xOf(bar.lead);
      const ahead = bar.lead >= 0;
      const offScale = Math.abs(bar.lead) > exponent ? ", off scale" : "";
      const verdict = `${formatRatio(2 ** Math.abs(bar.lead))} ${ahead ? "ahead" : "behind"}`;
      out.push(
        text(LABEL_RIGHT, y + 15, `vs ${bar.peer}`, `text-anchor="end" fill="${INK}"`),
        `<rect x="${Math.min(x, centre).toFixed(1)}" y="${y + 3}" width="${Math.max(1, Math.abs(x - centre)).toFixed(1)}" height="${ROW - 6}" rx="2" fill="${ahead ? AHEAD : BEHIND}"/>`,
        text(PLOT_RIGHT + 14, y + 15, `${formatRatio(bar.ratio)}  (${verdict}${offScale})`, `fill="${INK}"`),
      );
      y += ROW;
    }
    y += GROUP_GAP;
  }
  out.push("</svg>\n");
  return out.join("\n");
}
