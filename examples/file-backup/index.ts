/**
 * pynetwork's Tutorial 1, file backup: a gateway (a machine that writes logs)
 * offers `mount_usage` (how full its log disk is, in percent) and
 * `remove_logs` (delete named logs). A controller watches the usage; when it
 * passes a threshold it downloads the old logs over a swarm, checks them, and
 * asks the gateway to delete them.
 *
 *   npm run example:file-backup                         # both sides in one process, in a temp dir
 *   npm run example:file-backup -- --role gateway --port 1857 --dir /var/app
 *   npm run example:file-backup -- --role controller --port 1857 --dir ./backup
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { Controller, DataType, Gateway, fromBytes, toBytes, type FileProgress } from "../../runtime/index.js";

const { values } = parseArgs({
  options: {
    role: { type: "string", default: "both" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "0" },
    dir: { type: "string" },
    threshold: { type: "string", default: "70" },
    clients: { type: "string", default: "4" },
  },
});
const log = (line: string): void => void process.stdout.write(`${line}\n`);

/** The simulated log disk: usage is the logs' total size against this quota. */
const QUOTA_BYTES = 8 * 1024 * 1024;
/** Logs are named like `app-2026-11-01.log`. */
const LOG_NAME = /^app-\d{4}-\d{2}-\d{2}\.log$/;
/** "Old" logs: before 2026-11-20. The regex runs on the gateway against names relative to the folder. */
const OLD_LOGS = /^app-2026-(0\d|10)-\d{2}\.log$|^app-2026-11-(0\d|1\d)\.log$/;

async function usagePercent(logs: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(logs)) total += (await stat(join(logs, name))).size;
  return Math.round((total / QUOTA_BYTES) * 100);
}

async function startGateway(dir: string, port: number): Promise<Gateway> {
  const logs = join(dir, "logs");
  await mkdir(logs, { recursive: true });
  // A month of logs of odd sizes, most of them old.
  for (let day = 1; day <= 26; day++) {
    const date = `2026-11-${String(day).padStart(2, "0")}`;
    await writeFile(join(logs, `app-${date}.log`), randomBytes(150_000 + day * 7_919));
  }
  const gw = new Gateway({ host: values.host, port, maxPoolSize: 8, fileRoots: [dir], downloadDir: join(dir, "incoming") });
  gw.addSubroutine("mount_usage", async () => toBytes(DataType.int, await usagePercent(logs)));
  gw.addSubroutine("remove_logs", async (names: string[]) => {
    let removed = 0;
    for (const name of names) {
      // Only plain log names: this subroutine deletes files, so it takes no paths.
      if (!LOG_NAME.test(name)) throw new Error(`refusing to remove ${JSON.stringify(name)}`);
      await unlink(join(logs, name));
      removed++;
    }
    log(`  [gateway] removed ${removed} logs`);
    return removed;
  });
  await gw.start();
  log(`gateway serving ${logs} on ${gw.endpoint}`);
  return gw;
}

async function runController(port: number, backupDir: string): Promise<void> {
  const controller = new Controller({ host: values.host, port, downloadDir: backupDir, verbose: true });
  try {
    const client = await controller.getClient();
    const usage = fromBytes(DataType.int, await client.getSubroutineBatch("mount_usage"));
    const threshold = Number(values.threshold);
    log(`mount usage ${usage}% (threshold ${threshold}%)`);
    if (usage <= threshold) {
      log("below the threshold: nothing to back up");
      return;
    }
    const swarm = await controller.getSwarm(Number(values.clients));
    let last: FileProgress | undefined;
    const paths = await swarm.getFilesFromGateway({
      folder: "logs",
      regex: OLD_LOGS,
      verify: true,
      onProgress: (p) => void (last = p),
    });
    log(
      `backed up ${paths.length} old logs (${last?.totalBytes ?? 0} bytes, SHA-256 verified) over a swarm of ${swarm.size} into ${backupDir}`,
    );
    // Only now that every copy is in place (renamed from .part after its checks) may the originals go.
    const names = paths.map((p) => basename(p));
    const removed = await client.getSubroutineBatch<number>("remove_logs", [names]);
    log(`asked the gateway to remove ${names.length} old logs: ${removed} removed`);
    const after = fromBytes(DataType.int, await client.getSubroutineBatch("mount_usage"));
    log(`mount usage now ${after}%`);
    await swarm.close();
  } finally {
    await controller.close();
  }
}

const role = values.role;
if (role === "gateway") {
  const gw = await startGateway(values.dir ?? process.cwd(), Number(values.port));
  await gw.closed;
} else if (role === "controller") {
  await runController(Number(values.port), values.dir ?? "backup");
} else {
  const dir = await mkdtemp(join(tmpdir(), "swarmnet-file-backup-"));
  try {
    const gw = await startGateway(join(dir, "gateway"), 0);
    try {
      await runController(gw.port, join(dir, "backup"));
      const kept = (await readdir(join(dir, "backup"))).filter((n) => LOG_NAME.test(n)).length;
      log(`backup folder holds ${kept} logs`);
    } finally {
      await gw.stop();
    }
    log("file-backup done");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
