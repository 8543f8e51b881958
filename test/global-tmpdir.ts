/**
 * vitest globalSetup: the whole run gets a temp folder of its own (TMPDIR, so
 * os.tmpdir() in every worker and child process points there), and the run
 * fails if a test left anything in it. The folder is removed either way, so
 * `npm test` leaves nothing behind in the machine's temp dir.
 */
import { chmod, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export default async function setup(): Promise<() => Promise<void>> {
  const outer = tmpdir();
  const dir = await mkdtemp(join(outer, "swarmnet-test-run-"));
  // Open as /tmp is (sticky, world-writable): some tests run children as `nobody`, which need a tsx cache here too.
  await chmod(dir, 0o1777);
  // tsx keeps its compile cache in os.tmpdir()/tsx-<uid>: share the machine's, so child processes stay fast.
  const tsxCache = `tsx-${userInfo().uid}`;
  await symlink(join(outer, tsxCache), join(dir, tsxCache)).catch(() => undefined);
  process.env["TMPDIR"] = dir;
  return async () => {
    const left = (await readdir(dir)).filter((name) => !name.startsWith("tsx-"));
    await rm(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`tests left ${left.length} entries in the temp dir: ${left.slice(0, 10).join(", ")}`);
  };
}
