import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { describe, expect, it, onTestFinished } from "vitest";
import { createActor, createMachine } from "xstate";
import { handlerMachine, supervisorMachine } from "../runtime/actors.js";
import {
  AdminConnection,
  ErrorCode,
  describeMachine,
  startWebInspector,
  type InspectorActor,
  type MachineGraph,
  type StateGraph,
} from "../runtime/index.js";
import { TransitionLog } from "../runtime/transition-log.js";
import { parseClientMessage, parseGatewayMessage } from "../protocol/index.js";
import { cli, running } from "./cli-helpers.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) {
  console.warn(`web inspector browser test SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
}
const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url));
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function findState(node: StateGraph, id: string): StateGraph | undefined {
  if (node.id === id) return node;
  for (const child of node.states) {
    const found = findState(child, id);
    if (found) return found;
  }
  return undefined;
}

/** A GET with the given Host header (fetch will not let us forge it). */
function getWithHost(url: string, host: string): Promise<number> {
  return within(
    new Promise<number>((resolve, reject) => {
      const req = request(url, { headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    }),
    5_000,
    `GET ${url}`,
  );
}

async function state(url: string): Promise<{ actors: InspectorActor[]; machines: Record<string, MachineGraph> }> {
  const res = await within(fetch(new URL("api/state", url)), 5_000, "inspector state");
  expect(res.status).toBe(200);
  return (await res.json()) as { actors: InspectorActor[]; machines: Record<string, MachineGraph> };
}

/** A subroutine whose call stays in flight until the test lets it go. */
function heldCall(): { fn: () => Promise<string>; release: () => void } {
  const waiting: (() => void)[] = [];
  return {
    fn: () => new Promise<string>((resolve) => waiting.push(() => resolve("done"))),
    release: () => waiting.splice(0).forEach((go) => go()),
  };
}

describe("statecharts and transitions", () => {
  it("describeMachine reads states, guards and targets from the machine's own definition", () => {
    const handler = describeMachine(handlerMachine);
    expect(handler.id).toBe("handler");
    const idle = findState(handler.root, "handler.idle")!;
    expect(idle.transitions).toContainEqual({ event: "call.async", targets: ["handler.busy.batchSend"], guard: "isSend" });
    const streaming = findState(handler.root, "handler.busy.streaming")!;
    expect(streaming.entry).toContain("startStream");
    expect(streaming.transitions).toContainEqual({ event: "job.finished", targets: ["handler.idle"], guard: "isJobOfCurrent" });
    expect(findState(handler.root, "handler.busy")!.initial).toBe("handler.busy.batchGet");
    const supervisor = describeMachine(supervisorMachine);
    expect(findState(supervisor.root, "supervisor.running")!.invoke).toContain("leaseSweeper");
    expect(findState(supervisor.root, "supervisor.running.full")!.transitions.map((t) => t.event)).toContain("always");
    // Plain data: survives JSON (and CBOR) as it is.
    expect(JSON.parse(JSON.stringify(handler))).toEqual(handler);
  });

  it("protocol - admin.watch carries a cursor (and machines: true), no raw frame; its result must carry snapshot, transitions and next", () => {
    expect(parseClientMessage({ type: "admin.watch", id: 3, since: 7, machines: true }, false)).toEqual({
      type: "admin.watch",
      id: 3,
      since: 7,
      machines: true,
    });
    expect(parseClientMessage({ type: "admin.watch", id: 3, since: 0 }, false)).toEqual({ type: "admin.watch", id: 3, since: 0 });
    for (const bad of [{ since: -1 }, { since: "7" }, {}]) {
      expect(() => parseClientMessage({ type: "admin.watch", id: 3, ...bad }, false)).toThrow(
        expect.objectContaining({ code: ErrorCode.PROTOCOL }),
      );
    }
    expect(() => parseClientMessage({ type: "admin.watch", id: 3, since: 0 }, true)).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
    const result = { type: "admin.watch.result", id: 3, snapshot: { state: "running" }, transitions: [], next: 0 };
    expect(parseGatewayMessage(result, false)).toEqual(result);
    expect(() => parseGatewayMessage({ ...result, next: undefined }, false)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
    expect(() => parseGatewayMessage({ ...result, machines: [1] }, false)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
  });

  it("admin.watch - the gateway records transitions once watched and sends the statecharts; off without admin: true", async () => {
    const plain = await startGateway();
    const refused = new AdminConnection(plain.endpoint, { timeoutMs: 3_000 });
    onTestFinished(() => refused.close());
    await expect(refused.watch(0)).rejects.toMatchObject({ code: ErrorCode.ADMIN_DISABLED });

    const gw = await startGateway({ admin: true });
    const held = heldCall();
    gw.addSubroutine("held", held.fn);
    const admin = new AdminConnection(gw.endpoint, { timeoutMs: 3_000 });
    onTestFinished(() => admin.close());
    const first = await admin.watch(0, { machines: true });
    expect(Object.keys(first.machines ?? {}).sort()).toEqual(["gateway", "handler", "supervisor"]);
    const client = await controllerFor(gw).getClient();
    const call = client.getSubroutineBatch("held", []);
    let cursor = first.next;
    const seen: string[] = [];
    // Bounded: each watch answers at once; a few rounds carry the call in and out of busy.
    for (let round = 0; round < 200 && !(seen.includes("busy.batchGet") && seen.at(-1) === "idle"); round++) {
      const watch = await admin.watch(cursor);
      expect(watch.machines).toBeUndefined();
      expect(watch.next).toBeGreaterThanOrEqual(cursor);
      cursor = watch.next;
      for (const t of watch.transitions) if (t.kind === "handler") seen.push(`${t.event}:${t.state}`.split(":")[1]!);
      if (seen.includes("busy.batchGet")) held.release();
      if (watch.transitions.length === 0) await within(new Promise((r) => setImmediate(r)), 1_000, "a turn of the loop");
    }
    await expect(call).resolves.toBe("done");
    expect(seen).toEqual(expect.arrayContaining(["busy.batchGet", "idle"]));
    expect(seen.indexOf("busy.batchGet")).toBeLessThan(seen.lastIndexOf("idle"));
    const all = gw.watch(0).transitions.filter((t) => t.kind === "handler");
    expect(all.find((t) => t.state === "busy.batchGet")).toMatchObject({
      event: "call.async",
      detail: expect.stringMatching(/^#\d+ held$/),
    });
  });

  it("the transition log keeps a bounded ring; a cursor from before it or from another log reads from the oldest kept", () => {
    const toggle = createMachine({ id: "toggle", initial: "off", states: { off: { on: { flip: "on" } }, on: { on: { flip: "off" } } } });
    const actor = createActor(toggle).start();
    const log = new TransitionLog(new Map([[toggle, "toggle"]]), 8).attach(actor);
    expect(log.since(0)).toEqual({ transitions: [], next: 0 });
    for (let i = 0; i < 20; i++) actor.send({ type: "flip" });
    const { transitions, next } = log.since(0);
    expect(transitions.map((t) => t.seq)).toEqual([13, 14, 15, 16, 17, 18, 19, 20]);
    expect(transitions.at(-1)).toMatchObject({ actor: actor.id, kind: "toggle", event: "flip", state: "off", status: "active" });
    expect(next).toBe(20);
    expect(log.since(next)).toEqual({ transitions: [], next: 20 });
    expect(log.since(18).transitions.map((t) => t.seq)).toEqual([19, 20]);
    expect(log.since(5_000).transitions[0]!.seq).toBe(13); // a restarted gateway's log starts again
    log.detach();
    actor.send({ type: "flip" });
    expect(log.last).toBe(20);
    actor.stop();
  });
});

describe("web inspector server", () => {
  it("serves its page and elkjs from the package (no CDN), answers only its own Host, and refuses bad options", async () => {
    const gw = await startGateway({ webInspector: true });
    const url = gw.webInspectorUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await (await fetch(url)).text();
    expect(html).toContain("swarmnet inspector");
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    const elk = await fetch(new URL("vendor/elk.bundled.js", url));
    expect(elk.status).toBe(200);
    expect((await elk.text()).length).toBeGreaterThan(100_000);
    expect(await getWithHost(url, "evil.example:80")).toBe(403);
    expect(await getWithHost(url, new URL(url).host)).toBe(200);
    const s = await state(url);
    expect(s.actors.map((a) => a.kind)).toEqual(["gateway", "supervisor"]);
    expect(s.machines["handler"]?.id).toBe("handler");
    await expect(startWebInspector({})).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(startWebInspector({ gateway: gw, port: 70_000 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });

  it("swarmnet inspect --web prints the URL, reads the gateway over admin, and exits 0 on Ctrl-C; admin off is exit 4", async () => {
    const gw = await startGateway({ admin: true });
    const web = running(["inspect", "--web", gw.endpoint]);
    const m = await web.waitFor(/web inspector on (http:\/\/127\.0\.0\.1:\d+\/)/, 30_000);
    const s = await state(m[1]!);
    expect(s.actors.find((a) => a.id === "supervisor")).toMatchObject({ kind: "supervisor", info: { pool: "0/5" } });
    expect((await web.stop("SIGINT")).code).toBe(0);

    const plain = await startGateway();
    const r = await cli(["inspect", "--web", plain.endpoint, "--timeout", "3000"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("SWARMNET_ADMIN_DISABLED");
  });
});

describe.skipIf(!HAVE_CHROMIUM)(
  `web inspector in a browser (headless Chromium at ${CHROMIUM}; skipped only where none is installed)`,
  () => {
    it("headless Chromium sees a handler go idle -> busy -> idle as a call runs, follows it, pauses and steps back", async () => {
      const gw = await startGateway({ admin: true, maxPoolSize: 4 });
      const held = heldCall();
      gw.addSubroutine("slow_query", held.fn);
      // Async, so each call moves the handler to busy and back (a sync one is served without a transition).
      gw.addSubroutine("echo", async (x: unknown) => x);
      gw.addSubroutine("ticks", async function* (n: number) {
        for (let i = 0; i < n; i++) yield [i, new Uint8Array(256)];
      });
      // A stream that runs until the client stops reading: paced by a timer so it does not hog the loop.
      gw.addSubroutine("telemetry", async function* () {
        for (let i = 0; ; i++) {
          if (i % 16 === 0) await new Promise((r) => setTimeout(r, 1));
          yield [i, new Uint8Array(512)];
        }
      });
      const controller = controllerFor(gw);
      // Over the admin interface, as `swarmnet inspect --web` does, plus a controller of this process.
      const inspector = await startWebInspector({ gateway: gw.endpoint, controller, intervalMs: 50 });
      onTestFinished(() => inspector.close());
      const client = await controller.getClient();
      const other = await controller.getClient();
      for await (const _ of other.stream("ticks", [50])) void _;
      const handler = gw.snapshot().handlers.find((h) => h.handlerId === client.handlerId)!.actorId;

      const profile = await tempDir("swarmnet-chromium-");
      const browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_FLAGS,
        viewport: { width: 1360, height: 820 },
      });
      onTestFinished(() => browser.close());
      const page = browser.pages()[0] ?? (await browser.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(inspector.url);

      const row = `[data-actor-id="${handler}"]`;
      await page.waitForSelector(`${row}[data-state="idle"]`, { timeout: 20_000 });
      await page.waitForSelector('[data-kind="client"][data-state="ready"]', { timeout: 20_000 });
      await page.click(row);
      await page.waitForSelector('#chart [data-state-id="handler.idle"].active', { timeout: 20_000 });

      const call = client.getSubroutineBatch("slow_query", []);
      await page.waitForSelector(`${row}[data-state="busy.batchGet"]`, { timeout: 20_000 });
      await page.waitForSelector('#chart [data-state-id="handler.busy.batchGet"].active', { timeout: 20_000 });
      await page.waitForSelector('#chart [data-state-id="handler.busy"].active', { timeout: 5_000 });
      // The facts panel may draw a frame after the chart (a loaded machine shows it): wait for it, bounded.
      await page.waitForFunction(
        `/request #\\d+ batchGet slow_query/.test(document.querySelector("#facts")?.textContent ?? "")`,
        undefined,
        { timeout: 10_000 },
      );
      expect(await page.locator("#facts").textContent()).toMatch(/request #\d+ batchGet slow_query/);
      // The client serves calls on its data plane: its machine stays ready, the row shows the call in flight.
      await page.waitForFunction(
        `/#\\d+ batchGet/.test(document.querySelector('[data-kind="client"][data-state="ready"] .sub')?.textContent ?? "")`,
        undefined,
        { timeout: 20_000 },
      );
      // Meanwhile the other handler streams: the page shows items done and a rate.
      let reading = true;
      const streamed = (async () => {
        let n = 0;
        for await (const _ of other.stream("telemetry", [])) {
          n++;
          if (!reading) break;
        }
        return n;
      })();
      const streamer = gw.snapshot().handlers.find((h) => h.handlerId === other.handlerId)!.actorId;
      await page.waitForFunction(
        `/\\d+ items · [1-9]\\d*\\/s/.test(document.querySelector('[data-actor-id="${streamer}"][data-state="busy.streaming"] .sub')?.textContent ?? "")`,
        undefined,
        { timeout: 20_000 },
      );
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "web-inspector.png") });

      reading = false;
      expect(await within(streamed, 10_000, "the telemetry stream to end")).toBeGreaterThan(0);
      held.release();
      await expect(within(call, 10_000, "the held call")).resolves.toBe("done");
      await page.waitForSelector(`${row}[data-state="idle"]`, { timeout: 20_000 });
      await page.waitForSelector('#chart [data-state-id="handler.idle"].active', { timeout: 20_000 });
      const seen = await page.evaluate(`window.inspector.seen(${JSON.stringify(handler)})`);
      expect(seen).toEqual(["idle", "busy.batchGet", "idle"]);
      const log = await page.locator("#log tbody").textContent();
      expect(log).toMatch(/call\.done.*idle/s);
      expect(log).toMatch(/call\.async.*slow_query.*busy\.batchGet/s);

      // Step back: the view goes to the previous transition (busy), the chart follows; forward returns to live.
      await page.click("#back");
      await page.waitForSelector('#mode[data-mode="history"]', { timeout: 5_000 });
      await page.waitForSelector('#state[data-state="busy.batchGet"]', { timeout: 5_000 });
      await page.waitForSelector('#chart [data-state-id="handler.busy.batchGet"].active', { timeout: 5_000 });
      await page.click("#forward");
      await page.waitForSelector('#mode[data-mode="live"]', { timeout: 5_000 });
      await page.waitForSelector('#state[data-state="idle"]', { timeout: 5_000 });

      // Pause: the view holds still while calls go on; resume catches up.
      const rows = async (): Promise<number> => page.locator("#log tbody tr").count();
      await page.click("#pause");
      await page.waitForSelector('#mode[data-mode="paused"]', { timeout: 5_000 });
      const paused = await rows();
      for (let i = 0; i < 3; i++) await client.getSubroutineBatch("echo", [i]);
      // The server has them (each /api/state read also feeds the open page, which holds them back while paused).
      const echoes = async (): Promise<number> =>
        ((await state(inspector.url)) as unknown as { transitions: { actor: string; detail?: string }[] }).transitions.filter(
          (t) => t.actor === handler && / echo$/.test(t.detail ?? ""),
        ).length;
      let recorded = 0;
      for (let attempt = 0; attempt < 100 && recorded < 3; attempt++) recorded = await echoes();
      expect(recorded).toBe(3);
      expect(await rows()).toBe(paused);
      await page.click("#pause");
      await page.waitForFunction(`document.querySelectorAll("#log tbody tr").length >= ${paused + 3}`, undefined, { timeout: 10_000 });

      // Every machine of both trees lays out and draws, its current state lit.
      for (const [id, machine, lit] of [
        ["gateway", "gateway", "gateway.running"],
        ["supervisor", "supervisor", "supervisor.running.accepting"],
        ["controller", "controller", "controller.open"],
        ["client-1", "client", "client.ready"],
      ] as const) {
        await page.click(`[data-actor-id="${id}"]`);
        await page.waitForSelector(`#chart svg[data-machine="${machine}"] [data-state-id="${lit}"].active`, { timeout: 10_000 });
      }
      expect(errors).toEqual([]);
    });
  },
);
