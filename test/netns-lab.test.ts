/**
 * The network-namespace lab: four gateways, each in its own namespace behind a
 * veth link, one controller (this process) with swarms spread over all four.
 * A link is taken down (`ip link set ... down`: packets vanish, no reset) and
 * brought back, mid-stream and mid-download; work must recover with nothing
 * lost. Needs root and `ip netns` (true here and in CI); skipped otherwise.
 * Only the 10.201.x.y addresses of the veth pairs made here are used.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Controller } from "../runtime/index.js";
import type { TransportFactory } from "../transports/transport.js";
import { zmqTransport } from "../transports/zmq.js";
import { hashTree, writeTree } from "./file-helpers.js";
import { tempDir, within } from "./helpers.js";

const GATEWAYS = 4;
/**
 * Client-side ZMTP heartbeats of 0.5 s (1.5 s timeout): a 2 s outage then makes ZeroMQ
 * replace the TCP connection, the case that used to lose work, instead of TCP riding it out.
 */
const quickHeartbeats: TransportFactory = {
  server: (o) => zmqTransport.server(o),
  client: (endpoint, o) => zmqTransport.client(endpoint, { ...o, heartbeatIntervalMs: 500 }),
};
const LEASE_MS = 10_000;

function sh(args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

const canNetns = process.getuid?.() === 0 && spawnSync("ip", ["netns", "list"]).status === 0;
if (!canNetns) console.warn("netns lab skipped: it needs root and `ip netns` (iproute2) to make network namespaces");

const tag = `sn${process.pid % 100_000}`;
const octet = (k: number): number => ((process.pid % 60) * 4 + k) % 250;
const lab: Array<{ ns: string; hostIf: string; address: string; child?: ChildProcess; endpoint?: string }> = [];

function linkDown(k: number): void {
  sh(["ip", "link", "set", lab[k]!.hostIf, "down"]);
}
function linkUp(k: number): void {
  sh(["ip", "link", "set", lab[k]!.hostIf, "up"]);
  // Bringing the host side up drops its address routes: they come back with the link.
}

async function startLabGateway(k: number, root: string): Promise<void> {
  const node = lab[k]!;
  const child = spawn(
    "ip",
    ["netns", "exec", node.ns, process.execPath, "--import", "tsx", "test/fixtures/lab-gateway.ts", node.address, root, String(LEASE_MS)],
    {
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  node.child = child;
  const port = await within(
    new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /PORT (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once("exit", (code) => reject(new Error(`lab gateway ${k} exited with ${code}`)));
    }),
    30_000,
    `lab gateway ${k}`,
  );
  node.endpoint = `tcp://${node.address}:${port}`;
}

describe.skipIf(!canNetns)("network-namespace lab: 4 gateways behind veth links", () => {
  let root = "";
  let hashes = new Map<string, string>();

  beforeAll(async () => {
    for (let k = 0; k < GATEWAYS; k++) {
      const ns = `${tag}-${k}`;
      const hostIf = `${tag}h${k}`;
      const nsIf = `${tag}n${k}`;
      const net = `10.201.${octet(k)}`;
      lab.push({ ns, hostIf, address: `${net}.2` });
      sh(["ip", "netns", "add", ns]);
      sh(["ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
      sh(["ip", "link", "set", nsIf, "netns", ns]);
      sh(["ip", "addr", "add", `${net}.1/24`, "dev", hostIf]);
      sh(["ip", "link", "set", hostIf, "up"]);
      sh(["ip", "netns", "exec", ns, "ip", "addr", "add", `${net}.2/24`, "dev", nsIf]);
      sh(["ip", "netns", "exec", ns, "ip", "link", "set", nsIf, "up"]);
      sh(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    }
    root = await import("node:fs/promises").then((fs) => fs.mkdtemp("/tmp/swarmnet-lab-"));
    hashes = await writeTree(root, { "big.bin": 32 * 1024 * 1024 });
    await Promise.all(lab.map((_, k) => startLabGateway(k, root)));
  }, 60_000);

  afterAll(async () => {
    for (const node of lab) {
      if (node.child && node.child.exitCode === null) node.child.kill("SIGKILL");
    }
    for (const node of lab) spawnSync("ip", ["netns", "del", node.ns]); // removes the veth pair too
    if (root) await import("node:fs/promises").then((fs) => fs.rm(root, { recursive: true, force: true }));
  });

  it("a link down for 2 s mid-stream and mid-download: every stream complete and in order, the file byte-identical", async () => {
    const down = await tempDir();
    const controller = new Controller({
      gateways: lab.map((n) => n.endpoint!),
      timeoutMs: 30_000,
      connectTimeoutMs: 5_000,
      downloadDir: down,
      transport: quickHeartbeats,
    });
    try {
      const swarm = await controller.getSwarm(GATEWAYS);
      const where = await Promise.all(swarm.clients.map((c) => c.getSubroutineBatch<string>("where")));
      expect(new Set(where).size).toBe(GATEWAYS); // spread over all four
      // Streams first: 20,000 items each at full speed; gateway 0's link goes down for 2 s midway.
      let outage: Promise<void> | undefined;
      const streams = swarm.clients.map(async (client, k) => {
        let next = 0;
        for await (const [ident] of client.stream("count", [20_000, 0], {}, { window: 512 })) {
          if (ident !== next) throw new Error(`stream ${k}: item ${ident} where ${next} was due`);
          next++;
          if (k === 0 && next === 5_000) {
            linkDown(0);
            outage = new Promise((resolve) => setTimeout(resolve, 2_000)).then(() => linkUp(0));
          }
        }
        return next;
      });
      expect(await within(Promise.all(streams), 60_000, "four streams")).toEqual([20_000, 20_000, 20_000, 20_000]);
      await outage;
      // Then a swarm download of 32 MiB split over the four; gateway 1's link goes down for 2 s midway.
      let cut = false;
      let back: Promise<void> | undefined;
      await within(
        swarm.getFilesFromGateway({
          files: ["big.bin"],
          splitBytes: 8 * 1024 * 1024,
          onProgress: (p) => {
            if (!cut && p.totalBytes >= 8 * 1024 * 1024) {
              cut = true;
              linkDown(1);
              back = new Promise((resolve) => setTimeout(resolve, 2_000)).then(() => linkUp(1));
            }
          },
        }),
        60_000,
        "the download",
      );
      await back;
      expect(cut).toBe(true);
      expect(await hashTree(down)).toEqual(hashes);
      // Both outages made ZeroMQ replace a connection, and the sessions resumed over the new ones
      // (client 1 may have finished its range before the cut: it resumes once the link is back).
      expect(swarm.clients[0]!.delivery!.resumes).toBeGreaterThanOrEqual(1);
      // Client 1 may have finished its range before the cut; its session works over the new connection.
      await within(swarm.clients[1]!.ping("after the outage"), 10_000, "client 1 answered after its link came back");
      await expect(swarm.clients[1]!.ping("after")).resolves.toBe("after");
    } finally {
      await controller.close();
    }
  });

  it("a sensor-rate stream (100 items/s) rides out a 3 s outage (shorter than the lease)", async () => {
    const controller = new Controller({ gateways: [lab[2]!.endpoint!], timeoutMs: 30_000 });
    try {
      const client = await controller.getClient();
      let next = 0;
      let back: Promise<void> | undefined;
      for await (const [ident] of client.stream("count", [500, 10])) {
        if (ident !== next) throw new Error(`item ${ident} where ${next} was due`);
        next++;
        if (next === 100) {
          linkDown(2);
          back = new Promise((resolve) => setTimeout(resolve, 3_000)).then(() => linkUp(2));
        }
      }
      await back;
      expect(next).toBe(500);
      await expect(client.ping("still here")).resolves.toBe("still here");
    } finally {
      await controller.close();
    }
  });
});
