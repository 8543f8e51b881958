import { basename } from "node:path";
import {
  AdminConnection,
  DEFAULT_ADMIN_TIMEOUT_MS,
  TimeoutError,
  startWebInspector,
  type AdminOptions,
  type GatewayInspection,
  type HandlerInspection,
} from "../runtime/index.js";
import {
  EXIT_CODES_HELP,
  ExitCode,
  UnreachableError,
  UsageError,
  clientCurve,
  err,
  gatewayFrom,
  intFlag,
  onInterrupt,
  onQuitKey,
  out,
  parse,
  toJson,
  type Command,
} from "./common.js";

/** How often the terminal view polls the gateway, in ms (`--interval`). */
const TERMINAL_INTERVAL_MS = 250;

const help = `Usage: swarmnet inspect [ENDPOINT] [options]

Shows a gateway's actor tree live: the supervisor with pool usage, and each
handler with its state, current request, bytes or items done, and restarts.
On a terminal the view redraws as states change; piped, a new view is printed
on each change. q (or Ctrl-C) ends it. ENDPOINT (or -g) is host, host:port or
tcp://host:port; the port is 1857 if left out.

The gateway must run with --admin (Gateway option admin: true). The request
needs no session: the inspector takes no pool slot. With CURVE, only
authorized keys get through.

With --web it serves a page instead, on 127.0.0.1 (it prints the URL and
opens nothing): every actor's statechart with its current state lit, the
recent transitions with their times, requests in flight, stream and transfer
progress and rates. Click an actor to follow it; pause and step back.

Options:
      --web                  serve the web inspector until Ctrl-C
      --port PORT            with --web: the page's port (default 0: a free one)
      --json                 print one snapshot as JSON and exit
      --interval MS          poll period (default ${TERMINAL_INTERVAL_MS})
      --timeout MS           deadline of each snapshot request (default ${DEFAULT_ADMIN_TIMEOUT_MS})
      --curve-public KEY     CURVE: this client's public key (Z85 text or a file)
      --curve-secret KEY     CURVE: this client's secret key (Z85 text or a file)
      --server-key KEY       CURVE: the gateway's public key (Z85 text or a file)
  -g, --gateway ENDPOINT     instead of ENDPOINT (default: $SWARMNET_GATEWAY or 127.0.0.1:1857)
  -h, --help                 this help

Examples:
  swarmnet inspect tcp://127.0.0.1:1857
  swarmnet inspect --web --port 8080 tcp://127.0.0.1:1857

${EXIT_CODES_HELP}`;

const options = {
  gateway: { type: "string", short: "g" },
  json: { type: "boolean" },
  web: { type: "boolean" },
  port: { type: "string" },
  interval: { type: "string" },
  timeout: { type: "string" },
  "curve-public": { type: "string" },
  "curve-secret": { type: "string" },
  "server-key": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function progressOf(h: HandlerInspection): string {
  const p = h.progress as Record<string, unknown> | undefined;
  if (p === undefined || p === null) return "-";
  const n = (key: string): number => (typeof p[key] === "number" ? (p[key] as number) : 0);
  if (p["kind"] === "stream") return `${n("itemsSent")} items${n("bytesSent") > 0 ? `, ${size(n("bytesSent"))}` : ""}`;
  if (p["kind"] === "files" && typeof p["bytesTotal"] === "number") {
    return `${p["direction"] === "receive" ? "recv" : "sent"} ${n("filesDone")}/${n("files")} files, ${size(n("bytesDone"))}/${size(n("bytesTotal"))}`;
  }
  if (p["kind"] === "fileList") return `${n("listed")} listed`;
  return toJson(p);
}

function requestOf(h: HandlerInspection, now: number): string {
  const r = h.request;
  if (r === undefined || r === null) return "-";
  const seconds = ((now - r.startedAt) / 1000).toFixed(1);
  return `#${r.id} ${r.kind}${r.name !== undefined ? ` ${r.name}` : ""}${r.thread !== undefined ? " [thread]" : ""} ${seconds}s`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
      .join("  ")
      .trimEnd(),
  );
}

/** The text view of one snapshot; `now` is the local clock (requests show how long they have run). */
export function renderInspection(s: GatewayInspection, now = Date.now()): string {
  const sup = s.supervisor;
  const lines = [
    `gateway ${s.endpoint ?? "-"}  ${s.state}`,
    `└─ supervisor ${sup.state}  pool ${sup.poolSize}/${sup.maxPoolSize}  waiting ${sup.waiting}  ` +
      `accepted ${sup.stats.accepted}  refused ${sup.stats.refused}  restarts ${sup.stats.restarts}  ` +
      `crashed-out ${sup.stats.crashedOut}  expired ${sup.stats.expired}`,
  ];
  const rows = [["   handler", "state", "request", "progress", "restarts", "served"]];
  s.handlers.forEach((h, i) => {
    const branch = i === s.handlers.length - 1 ? "   └─ " : "   ├─ ";
    rows.push([`${branch}${h.handlerId}`, h.state, requestOf(h, now), progressOf(h), String(h.restarts), String(h.served)]);
  });
  lines.push(...(s.handlers.length > 0 ? table(rows) : ["   (no handlers)"]));
  for (const pool of s.threads ?? []) {
    const workers = pool.workers.map((w) => `${Math.round(w.utilization * 100)}%`).join(" ");
    lines.push(
      `threads: ${basename(pool.module)}  ${pool.threads} threads  running ${pool.running}  queued ${pool.queued}  ` +
        `busy ${workers || "-"}`,
    );
  }
  lines.push(
    `security: ${s.security.handshakes} handshakes, ${s.security.authFailures} unauthorized, ${s.security.protocolFailures} failed`,
  );
  return lines.join("\n");
}

/** The view without what changes by the clock alone, to redraw on changes of state only. */
function signature(s: GatewayInspection): string {
  return toJson({
    ...s,
    handlers: s.handlers.map((h) => ({ ...h, request: h.request ? { ...h.request, startedAt: 0 } : null })),
    threads: (s.threads ?? []).map((t) => ({ ...t, utilization: 0, workers: t.workers.length })),
  });
}

/** `inspect --web`: the page for a gateway in another process, read over its admin interface, until Ctrl-C or SIGTERM. */
async function serveWeb(endpoint: string, port: number, admin: AdminOptions): Promise<number> {
  // Fail fast (exit 3 or 4) if the gateway is unreachable or has admin off, rather than serve an empty page.
  const probe = new AdminConnection(endpoint, admin);
  try {
    await probe.watch(0);
  } finally {
    probe.close();
  }
  const inspector = await startWebInspector({ gateway: endpoint, port, admin }).catch((e: Error) => {
    throw new UsageError(`--port ${port}: cannot serve on 127.0.0.1: ${e.message}`);
  });
  out(`web inspector on ${inspector.url} (gateway ${endpoint}; Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const disposeInt = onInterrupt(resolve);
    process.once("SIGTERM", () => {
      disposeInt();
      resolve();
    });
  });
  await inspector.close();
  return ExitCode.OK;
}

export const inspectCommand: Command = {
  name: "inspect",
  summary: "show a gateway's supervisor and handlers live (needs --admin)",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    const endpoint = gatewayFrom("inspect", values, positionals, true);
    const interval = intFlag("interval", values.interval, TERMINAL_INTERVAL_MS, 20);
    const curve = clientCurve(values);
    if (values.web && values.json) throw new UsageError("--web and --json do not go together");
    if (values.port !== undefined && !values.web) throw new UsageError("--port is for --web");
    if (values.web) {
      return serveWeb(endpoint, intFlag("port", values.port, 0, 0, 65535), {
        timeoutMs: intFlag("timeout", values.timeout, DEFAULT_ADMIN_TIMEOUT_MS),
        ...(curve ? { curve } : {}),
      });
    }
    const admin = new AdminConnection(endpoint, {
      timeoutMs: intFlag("timeout", values.timeout, DEFAULT_ADMIN_TIMEOUT_MS),
      ...(curve ? { curve } : {}),
    });
    try {
      // An admin request needs no session: no answer to the first one means the gateway was not reached.
      const first = await admin.snapshot().catch((e: unknown) => {
        throw e instanceof TimeoutError ? new UnreachableError(e) : e;
      });
      if (values.json) {
        out(JSON.stringify(first, null, 2));
        return ExitCode.OK;
      }
      const tty = process.stdout.isTTY === true;
      let stopped = false;
      let wake: (() => void) | undefined;
      const quit = (): void => {
        stopped = true;
        wake?.();
      };
      const disposeInterrupt = onInterrupt(quit);
      const disposeKey = onQuitKey(quit);
      const dispose = (): void => {
        disposeInterrupt();
        disposeKey();
      };
      let last = "";
      try {
        while (!stopped) {
          const snapshot = last === "" ? first : await admin.snapshot();
          const sig = signature(snapshot);
          // On a terminal redraw every poll (request timers tick); piped, print only changes.
          if (tty) process.stdout.write(`\u001b[H\u001b[2J${renderInspection(snapshot)}\n\n(every ${interval} ms; q or Ctrl-C to quit)\n`);
          else if (sig !== last) out(`${renderInspection(snapshot)}\n`);
          last = sig;
          if (snapshot.state === "stopped" || snapshot.state === "stopping") {
            err(`gateway is ${snapshot.state}`);
            return ExitCode.OK;
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, interval);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        return ExitCode.OK;
      } finally {
        dispose();
      }
    } finally {
      admin.close();
    }
  },
};
