/**
 * Prometheus metrics of a gateway (prom-client), off unless the Gateway
 * option `metrics` is set. Counts come from the messages the gateway sends and
 * receives (a `WireObserver` on the dispatcher and outbox, a few map
 * operations per request), and from the supervisor and transport counters
 * read at scrape time; a gateway without metrics runs no code for them.
 */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { WireObserver } from "../actors/dispatcher.js";
import type { ClientMessage, GatewayMessage } from "../protocol/index.js";
import { InvalidArgumentError } from "../protocol/index.js";
import type { Peer, ServerTransportStats } from "../transports/transport.js";

export interface MetricsOptions {
  /** Port of the `/metrics` endpoint on 127.0.0.1; 0 picks a free one (read `gateway.metricsUrl`). @default 0 */
  port?: number;
  /** Also collect prom-client's process and Node.js metrics (event-loop lag, GC, memory, CPU). @default true */
  defaultMetrics?: boolean;
}

/** What the metrics read from the gateway at scrape time. */
export interface MetricsSources {
  /** Whether a subroutine of that name is registered: other names are counted as `(unknown)`, so a client cannot grow the label set. */
  known(name: string): boolean;
  pool(): { size: number; limit: number; waiting: number; restarts: number; crashedOut: number };
  security(): ServerTransportStats;
}

/** Call latency buckets, in seconds: from sub-millisecond batch calls to long streams. */
export const CALL_DURATION_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];

/** Requests kept while they run; past this the oldest are forgotten (never counted). */
const MAX_PENDING = 100_000;

/**
 * One (subroutine, kind): calls by code and durations not yet handed to prom-client. A request only
 * bumps a number and pushes a duration here; the labelled prom-client series (which hash their labels
 * on every update) are brought up to date when scraped, or when this many durations wait.
 */
interface Series {
  readonly subroutine: string;
  readonly kind: string;
  readonly calls: Map<string, { total: number; reported: number }>;
  durations: number[];
}

/** Durations kept between scrapes per series before they are handed over anyway. */
const MAX_BUFFERED_DURATIONS = 4096;

interface Pending {
  readonly subroutine: string;
  readonly kind: "get" | "send" | "stream" | "download" | "upload" | "list";
  readonly started: number;
}

/**
 * A gateway's metrics. `linkDrop()` and `replay(n)` are for the link layer
 * (reconnects and replayed messages) to call; the rest is counted by the
 * gateway itself.
 */
export class GatewayMetrics implements WireObserver {
  /** The prom-client registry: add your own metrics to it, they are served too. */
  readonly registry = new Registry();
  readonly #sources: MetricsSources;
  readonly #pending = new Map<string, Pending>();
  readonly #open = new Set<string>();
  readonly #series = new Map<string, Series>();
  readonly #opened: Counter;
  readonly #ended: Counter<"reason">;
  readonly #refused: Counter<"code">;
  readonly #latency: Histogram<"subroutine" | "kind">;
  readonly #streamItems: Counter;
  readonly #streamBytes: Counter;
  readonly #fileBytes: Counter<"direction">;
  readonly #files: Counter<"direction">;
  readonly #linkDrops: Counter;
  readonly #replays: Counter;

  constructor(sources: MetricsSources, options: MetricsOptions = {}) {
    this.#sources = sources;
    const registers = [this.registry];
    const pool = (): ReturnType<MetricsSources["pool"]> => sources.pool();
    new Gauge({
      name: "swarmnet_pool_size",
      help: "Live handlers (sessions holding a slot).",
      registers,
      collect() {
        this.set(pool().size);
      },
    });
    new Gauge({
      name: "swarmnet_pool_limit",
      help: "maxPoolSize: handlers at most.",
      registers,
      collect() {
        this.set(pool().limit);
      },
    });
    new Gauge({
      name: "swarmnet_pool_waiting",
      help: "Clients waiting in the queue for a slot.",
      registers,
      collect() {
        this.set(pool().waiting);
      },
    });
    this.#opened = new Counter({ name: "swarmnet_sessions_opened_total", help: "Sessions welcomed.", registers });
    this.#ended = new Counter({
      name: "swarmnet_sessions_ended_total",
      help: "Sessions ended, by reason: closed (by the client), lost (undeliverable), or the code sent in session.ended.",
      labelNames: ["reason"],
      registers,
    });
    this.#refused = new Counter({
      name: "swarmnet_sessions_refused_total",
      help: "Hellos refused, by code (pool full, version, stopping).",
      labelNames: ["code"],
      registers,
    });
    const series = this.#series;
    new Counter({
      name: "swarmnet_calls_total",
      help: "Finished requests by subroutine, kind (get, send, stream, download, upload, list) and outcome code (OK, CANCELLED, ABORTED or the error code).",
      labelNames: ["subroutine", "kind", "code"],
      registers,
      collect() {
        for (const s of series.values()) {
          for (const [code, n] of s.calls) {
            if (n.total > n.reported) this.inc({ subroutine: s.subroutine, kind: s.kind, code }, n.total - n.reported);
            n.reported = n.total;
          }
        }
      },
    });
    this.#latency = new Histogram({
      name: "swarmnet_call_duration_seconds",
      help: "Time from a request's arrival to its final answer, in seconds.",
      labelNames: ["subroutine", "kind"],
      buckets: CALL_DURATION_BUCKETS_S,
      registers,
      collect: () => {
        for (const s of series.values()) this.#flushDurations(s);
      },
    });
    this.#streamItems = new Counter({ name: "swarmnet_stream_items_total", help: "Stream items sent.", registers });
    this.#streamBytes = new Counter({ name: "swarmnet_stream_bytes_total", help: "Bytes of byte-string stream items sent.", registers });
    this.#fileBytes = new Counter({
      name: "swarmnet_file_bytes_total",
      help: "File bytes moved, by direction (download: sent, upload: received).",
      labelNames: ["direction"],
      registers,
    });
    this.#files = new Counter({
      name: "swarmnet_files_total",
      help: "Files completed, by direction.",
      labelNames: ["direction"],
      registers,
    });
    this.#linkDrops = new Counter({
      name: "swarmnet_link_drops_total",
      help: "Client links that dropped while their session lived.",
      registers,
    });
    this.#replays = new Counter({ name: "swarmnet_replayed_messages_total", help: "Messages replayed after a link came back.", registers });
    // Counters that follow a number the gateway already keeps, read when scraped.
    const follow = (name: string, help: string, read: () => number): void => {
      let last = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const now = read();
          if (now > last) this.inc(now - last);
          last = Math.max(last, now);
        },
      });
    };
    follow("swarmnet_handler_restarts_total", "Crashed handlers restarted by the supervisor.", () => pool().restarts);
    follow(
      "swarmnet_handler_crashed_out_total",
      "Sessions ended because their handler crashed past its restart budget.",
      () => pool().crashedOut,
    );
    follow("swarmnet_auth_failures_total", "CURVE clients refused (key not authorized).", () => sources.security().authFailures);
    follow(
      "swarmnet_handshake_failures_total",
      "Peers that failed the ZMTP handshake otherwise.",
      () => sources.security().protocolFailures,
    );
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** A client's link dropped while its session lived (for the link layer to call). */
  linkDrop(): void {
    this.#linkDrops.inc();
  }

  /** `messages` were replayed after a link came back (for the link layer to call). */
  replay(messages: number): void {
    if (messages > 0) this.#replays.inc(messages);
  }

  /** The text Prometheus scrapes. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  inbound(peer: Peer, message: ClientMessage, raw: Uint8Array | undefined): void {
    switch (message.type) {
      case "rpc.call":
        this.#start(peer, message.id, message.name, message.mode);
        return;
      case "stream.open":
        this.#start(peer, message.id, message.name, "stream");
        return;
      case "file.get":
        this.#start(peer, message.id, "", "download");
        return;
      case "file.put":
        this.#start(peer, message.id, "", "upload");
        return;
      case "file.list":
        this.#start(peer, message.id, "", "list");
        return;
      case "file.data":
        if (raw !== undefined) this.#fileBytes.inc({ direction: "upload" }, raw.length);
        return;
      case "rpc.cancel":
        this.#finish(peer, message.id, "CANCELLED");
        return;
      default:
        return;
    }
  }

  outbound(peer: Peer, message: GatewayMessage, raw: Uint8Array | undefined): void {
    switch (message.type) {
      case "stream.items":
        this.#streamItems.inc(message.items.length);
        if (raw !== undefined) this.#streamBytes.inc(raw.length);
        return;
      case "file.data":
        if (raw !== undefined) this.#fileBytes.inc({ direction: "download" }, raw.length);
        return;
      case "rpc.result":
      case "file.listing":
        this.#finish(peer, message.id, "OK");
        return;
      case "stream.end":
        this.#finish(peer, message.id, message.aborted ? "ABORTED" : "OK");
        return;
      case "file.done": {
        const pending = this.#finish(peer, message.id, "OK");
        if (pending !== undefined && message.files > 0) this.#files.inc({ direction: pending.kind }, message.files);
        return;
      }
      case "error":
        this.#finish(peer, message.id, message.code);
        return;
      case "welcome":
        if (!this.#open.has(peer.key)) {
          this.#open.add(peer.key);
          this.#opened.inc();
        }
        return;
      case "refused":
        this.#refused.inc({ code: message.code });
        return;
      case "session.closed":
        this.#end(peer, "closed");
        return;
      case "session.ended":
        this.#end(peer, message.code);
        return;
      default:
        return;
    }
  }

  /** The dispatcher saw a client resume after a link drop: a drop, and what is sent again. */
  resumed(_peer: Peer, replayed: number): void {
    this.linkDrop();
    this.replay(replayed);
  }

  lost(peer: Peer): void {
    this.#end(peer, "lost");
  }

  #start(peer: Peer, id: number, name: string, kind: Pending["kind"]): void {
    if (this.#pending.size >= MAX_PENDING) {
      const oldest = this.#pending.keys().next().value;
      if (oldest !== undefined) this.#pending.delete(oldest);
    }
    const subroutine = kind === "download" || kind === "upload" || kind === "list" ? "" : this.#sources.known(name) ? name : "(unknown)";
    this.#pending.set(`${peer.key}\u0000${id}`, { subroutine, kind, started: performance.now() });
  }

  #finish(peer: Peer, id: number, code: string): Pending | undefined {
    const key = `${peer.key}\u0000${id}`;
    const pending = this.#pending.get(key);
    if (pending === undefined) return undefined;
    this.#pending.delete(key);
    const seriesKey = `${pending.subroutine}\u0000${pending.kind}`;
    let series = this.#series.get(seriesKey);
    if (series === undefined) {
      series = { subroutine: pending.subroutine, kind: pending.kind, calls: new Map(), durations: [] };
      this.#series.set(seriesKey, series);
    }
    const calls = series.calls.get(code);
    if (calls === undefined) series.calls.set(code, { total: 1, reported: 0 });
    else calls.total++;
    series.durations.push((performance.now() - pending.started) / 1000);
    if (series.durations.length >= MAX_BUFFERED_DURATIONS) this.#flushDurations(series);
    return pending;
  }

  #flushDurations(series: Series): void {
    if (series.durations.length === 0) return;
    const child = this.#latency.labels(series.subroutine, series.kind);
    for (const seconds of series.durations) child.observe(seconds);
    series.durations = [];
  }

  #end(peer: Peer, reason: string): void {
    if (!this.#open.delete(peer.key)) return;
    this.#ended.inc({ reason });
    const prefix = `${peer.key}\u0000`;
    for (const key of this.#pending.keys()) if (key.startsWith(prefix)) this.#pending.delete(key);
  }
}

/** Serves `metrics.render()` at `/metrics` on 127.0.0.1:`port`; resolves with the server and its URL once listening. */
export async function serveMetrics(metrics: GatewayMetrics, port: number): Promise<{ server: Server; url: string }> {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new InvalidArgumentError(`Gateway option 'metrics.port' must be an integer 0..65535, got ${String(port)}`);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  return { server, url: `http://127.0.0.1:${bound}/metrics` };
}
