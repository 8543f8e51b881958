/**
 * The web inspector: a page on 127.0.0.1 that draws the live actor tree of a
 * gateway (in-process, or over `admin.watch` from another process) and of a
 * controller, each actor's statechart laid out by elkjs from its machine's
 * definition, with the current state lit and the recent transitions.
 *
 * The server polls its sources while a page is connected and pushes frames
 * over server-sent events; the page's assets (`web/inspector/`) and elkjs's
 * browser bundle ship with the package and are served from disk: no CDN.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError } from "../protocol/index.js";
import { AdminConnection, type AdminOptions } from "./admin.js";
import type { Controller } from "./controller.js";
import type { Gateway } from "./gateway.js";
import {
  CONTROLLER_KINDS,
  controllerActors,
  gatewayActors,
  machineGraphs,
  type GatewayWatch,
  type InspectorActor,
} from "./inspector-feed.js";
import type { MachineGraph } from "./statechart.js";
import { intOption } from "./options.js";
import { TransitionLog, type TransitionRecord } from "./transition-log.js";

/** How often the server reads its sources while a page is open, in ms. */
export const DEFAULT_INSPECTOR_INTERVAL_MS = 100;
/** Transitions the server keeps for a page that connects (it steps back through them). */
export const INSPECTOR_HISTORY = 2000;

export interface WebInspectorOptions {
  /**
   * The gateway to show: a `Gateway` of this process, or the endpoint of one
   * started with `admin: true` (read over its admin interface, CURVE keys in
   * `admin.curve` where it uses CURVE).
   */
  gateway?: Gateway | string;
  /** A controller of this process: the page shows it and every client. */
  controller?: Controller;
  /** Port on 127.0.0.1; 0 picks a free one (read `inspector.url`). @default 0 */
  port?: number;
  /** How often the sources are read while a page is open, in ms. @default 100 */
  intervalMs?: number;
  /** Options of the admin connection, for a gateway given by endpoint. */
  admin?: AdminOptions;
}

/** A running web inspector. */
export interface WebInspector {
  /** `http://127.0.0.1:PORT/`: open it in a browser. */
  readonly url: string;
  readonly port: number;
  /** Stops serving and closes the admin connection; open pages see the stream end. A no-op when closed. */
  close(): Promise<void>;
}

/** One place the inspector reads actors from. */
interface Source {
  readonly title: string;
  machines(): Promise<Record<string, MachineGraph>>;
  read(): Promise<{ actors: InspectorActor[]; transitions: readonly TransitionRecord[] }>;
  close(): void;
}

/** A transition as the page gets it: `n` numbers every transition this server has seen, so a page can drop repeats. */
type NumberedTransition = TransitionRecord & { readonly n: number };

/** What the page gets: once on connect (`init`), then a `frame` per change. */
interface Frame {
  readonly at: number;
  readonly sources: readonly { readonly title: string; readonly error: string | null }[];
  readonly actors: readonly InspectorActor[];
  readonly transitions: readonly NumberedTransition[];
}

class GatewaySource implements Source {
  readonly title: string;
  readonly #read: (since: number, machines: boolean) => Promise<GatewayWatch>;
  readonly #close: () => void;
  #cursor = 0;

  constructor(gateway: Gateway | string, admin: AdminOptions) {
    if (typeof gateway === "string") {
      const connection = new AdminConnection(gateway, admin);
      this.title = `gateway ${connection.endpoint}`;
      this.#read = (since, machines) => connection.watch(since, { machines });
      this.#close = () => connection.close();
    } else {
      this.title = "gateway";
      this.#read = async (since, machines) => gateway.watch(since, { machines });
      this.#close = () => undefined;
    }
  }

  async machines(): Promise<Record<string, MachineGraph>> {
    return (await this.#read(this.#cursor, true)).machines ?? {};
  }

  async read(): Promise<{ actors: InspectorActor[]; transitions: readonly TransitionRecord[] }> {
    const watch = await this.#read(this.#cursor, false);
    // A cursor that went backwards means a restarted gateway: its log starts again.
    this.#cursor = watch.next;
    return { actors: gatewayActors(watch.snapshot), transitions: watch.transitions };
  }

  close(): void {
    this.#close();
  }
}

class ControllerSource implements Source {
  readonly title = "controller";
  readonly #controller: Controller;
  readonly #log: TransitionLog;
  #cursor = 0;

  constructor(controller: Controller) {
    this.#controller = controller;
    this.#log = new TransitionLog(CONTROLLER_KINDS).attach(controller.actor);
  }

  async machines(): Promise<Record<string, MachineGraph>> {
    return machineGraphs(CONTROLLER_KINDS);
  }

  async read(): Promise<{ actors: InspectorActor[]; transitions: readonly TransitionRecord[] }> {
    const { transitions, next } = this.#log.since(this.#cursor);
    this.#cursor = next;
    return { actors: controllerActors(this.#controller), transitions };
  }

  close(): void {
    this.#log.detach();
  }
}

/** The folder with the page's assets: `web/inspector/` at the package root, from the sources or from `dist/`. */
function assetsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "..", "web", "inspector"), join(here, "..", "..", "web", "inspector")]) {
    if (existsSync(join(candidate, "index.html"))) return candidate;
  }
  throw new Error(`web inspector assets not found next to ${here} (expected web/inspector/ at the package root)`);
}

const CONTENT_TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/** Rates are measured over this window: a gateway's snapshot is reused for 100 ms, so single readings are too coarse. */
const RATE_WINDOW_MS = 1_000;

interface Readings {
  readonly request: number | undefined;
  readonly samples: { readonly at: number; readonly items: number; readonly bytes: number }[];
}

function num(o: Record<string, unknown>, key: string): number {
  return typeof o[key] === "number" ? (o[key] as number) : 0;
}

/** Items and bytes per second of a stream or transfer over the last second of readings (kept in `readings`). */
function rateOf(
  actor: InspectorActor,
  readings: Readings | undefined,
  at: number,
): { rate: InspectorActor["rate"]; readings: Readings | undefined } {
  const p = actor.progress;
  if (p === null) return { rate: null, readings: undefined };
  const request = actor.request?.id;
  const kept = readings !== undefined && readings.request === request ? readings.samples.filter((s) => at - s.at <= RATE_WINDOW_MS) : [];
  const samples = [...kept, { at, items: num(p, "itemsSent"), bytes: num(p, "bytesSent") + num(p, "bytesDone") }];
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const seconds = (last.at - first.at) / 1000;
  const rate =
    seconds <= 0
      ? null
      : { ...(p["kind"] === "stream" ? { items: (last.items - first.items) / seconds } : {}), bytes: (last.bytes - first.bytes) / seconds };
  return { rate, readings: { request, samples } };
}

class Inspector implements WebInspector {
  readonly url: string;
  readonly port: number;
  readonly #server: Server;
  readonly #sources: readonly Source[];
  readonly #intervalMs: number;
  readonly #assets: string;
  readonly #elk: string;
  readonly #pages = new Set<ServerResponse>();
  readonly #history: NumberedTransition[] = [];
  #numbered = 0;
  #machines: Record<string, MachineGraph> | undefined;
  #last: Frame | undefined;
  #readings = new Map<string, Readings>();
  #latest = new Map<string, TransitionRecord>();
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<Frame> | undefined;
  #closed = false;

  constructor(server: Server, port: number, sources: readonly Source[], intervalMs: number, assets: { dir: string; elk: string }) {
    this.#server = server;
    this.port = port;
    this.url = `http://127.0.0.1:${port}/`;
    this.#sources = sources;
    this.#intervalMs = intervalMs;
    this.#assets = assets.dir;
    this.#elk = assets.elk;
    server.on("request", (req, res) => void this.#serve(req, res));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const page of this.#pages) page.end();
    this.#pages.clear();
    for (const source of this.#sources) source.close();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only pages loaded from this address may read it: a foreign Host header is DNS rebinding.
    const host = req.headers.host ?? "";
    if (![`127.0.0.1:${this.port}`, `localhost:${this.port}`].includes(host)) {
      res.writeHead(403, { "content-type": "text/plain" }).end("forbidden host\n");
      return;
    }
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    try {
      if (req.method !== "GET") {
        res.writeHead(405, { allow: "GET" }).end();
      } else if (path === "/events") {
        await this.#openStream(res);
      } else if (path === "/api/state") {
        const frame = await this.#read();
        this.#json(res, { machines: await this.#allMachines(), ...frame, transitions: this.#history });
      } else if (path === "/favicon.ico") {
        res.writeHead(204).end();
      } else if (path === "/vendor/elk.bundled.js") {
        this.#file(res, await readFile(this.#elk), "js");
      } else if (path === "/" || path === "/app.js" || path === "/style.css") {
        const name = path === "/" ? "index.html" : path.slice(1);
        this.#file(res, await readFile(join(this.#assets, name)), name.split(".").pop()!);
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      }
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`${(err as Error).message}\n`);
    }
  }

  #file(res: ServerResponse, body: Buffer, ext: string): void {
    res.writeHead(200, { "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream", "cache-control": "no-cache" }).end(body);
  }

  #json(res: ServerResponse, body: unknown): void {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }).end(JSON.stringify(body));
  }

  async #openStream(res: ServerResponse): Promise<void> {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    const frame = await this.#read();
    if (this.#closed || res.destroyed) return void res.end();
    this.#send(res, "init", { machines: await this.#allMachines(), ...frame, transitions: this.#history, intervalMs: this.#intervalMs });
    this.#pages.add(res);
    res.on("close", () => this.#pages.delete(res));
    this.#schedule();
  }

  #send(res: ServerResponse, event: string, data: unknown): void {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  async #allMachines(): Promise<Record<string, MachineGraph>> {
    if (this.#machines === undefined) {
      const all: Record<string, MachineGraph> = {};
      for (const source of this.#sources) Object.assign(all, await source.machines().catch(() => ({})));
      if (Object.keys(all).length === 0) return all; // a remote gateway not reachable yet: ask again next time
      this.#machines = all;
    }
    return this.#machines;
  }

  /** Reads every source once (concurrent callers share the read). */
  #read(): Promise<Frame> {
    this.#reading ??= this.#readSources().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #readSources(): Promise<Frame> {
    const at = Date.now();
    const results = await Promise.all(
      this.#sources.map((source) =>
        source.read().then(
          (r) => ({ ...r, error: null }),
          (err: Error) => ({ actors: [], transitions: [], error: err.message }),
        ),
      ),
    );
    // A gateway reuses its snapshot for 100 ms, its transitions are exact: the latest transition of an actor gives its state.
    for (const r of results) for (const t of r.transitions) this.#latest.set(t.actor, t);
    const readings = new Map<string, Readings>();
    const latest = new Map<string, TransitionRecord>();
    const actors = results
      .flatMap((r) => r.actors)
      .map((actor) => {
        const last = this.#latest.get(actor.id);
        if (last !== undefined) latest.set(actor.id, last);
        const { rate, readings: kept } = rateOf(actor, this.#readings.get(actor.id), at);
        if (kept !== undefined) readings.set(actor.id, kept);
        return { ...actor, state: last?.state ?? actor.state, rate };
      });
    this.#readings = readings;
    this.#latest = latest;
    const transitions = results
      .flatMap((r) => r.transitions)
      .sort((a, b) => a.at - b.at)
      .map((t) => ({ ...t, n: ++this.#numbered }));
    this.#history.push(...transitions);
    if (this.#history.length > INSPECTOR_HISTORY) this.#history.splice(0, this.#history.length - INSPECTOR_HISTORY);
    const frame: Frame = { at, sources: this.#sources.map((s, i) => ({ title: s.title, error: results[i]!.error })), actors, transitions };
    this.#broadcast(frame);
    return frame;
  }

  /** Every read goes to the open pages (whoever asked for it), so no transition is read and not shown. */
  #broadcast(frame: Frame): void {
    const last = this.#last;
    this.#last = frame;
    const changed =
      frame.transitions.length > 0 ||
      JSON.stringify(frame.actors) !== JSON.stringify(last?.actors) ||
      JSON.stringify(frame.sources) !== JSON.stringify(last?.sources);
    if (changed) for (const page of this.#pages) this.#send(page, "frame", frame);
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#pages.size === 0 || this.#closed) return; // nobody watching: stop reading
      void this.#read().then(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}

/**
 * Serves the web inspector on 127.0.0.1 and resolves once it listens. It opens
 * no browser: print `inspector.url`.
 *
 * ```ts
 * const inspector = await startWebInspector({ gateway, controller });
 * console.log(`inspector on ${inspector.url}`);
 * ```
 * @throws InvalidArgumentError (SWARMNET_INVALID_ARGUMENT) without a gateway or controller, or with a bad port or interval.
 */
export async function startWebInspector(options: WebInspectorOptions): Promise<WebInspector> {
  const port = intOption("startWebInspector", "port", options.port, 0, 0, 65535);
  const intervalMs = intOption("startWebInspector", "intervalMs", options.intervalMs, DEFAULT_INSPECTOR_INTERVAL_MS, 10);
  if (options.gateway === undefined && options.controller === undefined) {
    throw new InvalidArgumentError("web inspector needs a 'gateway' (a Gateway or an endpoint) or a 'controller'");
  }
  const assets = { dir: assetsDir(), elk: createRequire(import.meta.url).resolve("elkjs/lib/elk.bundled.js") };
  const sources: Source[] = [];
  if (options.gateway !== undefined) sources.push(new GatewaySource(options.gateway, options.admin ?? {}));
  if (options.controller !== undefined) sources.push(new ControllerSource(options.controller));
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    for (const source of sources) source.close();
    throw err;
  }
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  return new Inspector(server, bound, sources, intervalMs, assets);
}
