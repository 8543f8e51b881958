/**
 * The gateway of `npm run soak`, in its own process (so its RSS is its own):
 *   tsx scripts/soak-gateway.ts <files-root> <upload-dir> [livenessMs]
 * Prints "PORT <n>" once bound.
 */
import { Gateway } from "../runtime/index.js";
import { crashHandlerForTest, type InternalGatewayOptions } from "../runtime/internal.js";

const [root, uploads, lease] = process.argv.slice(2);
let executions = 0;
const options: InternalGatewayOptions = {
  port: 0,
  livenessMs: Number(lease ?? 5_000),
  maxPoolSize: 64,
  fileRoots: [root!],
  downloadDir: uploads!,
  // Only to inject handler crashes (crashHandlerForTest); nothing else changes.
  testHooks: {},
};
const gw = new Gateway(options);
gw.addSubroutine("echo", (k: number) => {
  executions++;
  return k;
});
gw.addSubroutine("later", async (k: number) => {
  executions++;
  await new Promise((resolve) => setTimeout(resolve, 1));
  return k;
});
gw.addSubroutine("count", async function* (n: number) {
  for (let i = 0; i < n; i++) {
    if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve));
    yield [i, Buffer.from(`item ${i}`)];
  }
});
gw.addSubroutine("stats", () => ({
  executions,
  rss: process.memoryUsage().rss,
  delivery: gw.deliveryStats(),
  pool: gw.snapshot().supervisor.poolSize,
}));
/** Crashes a random handler other than the caller's (a bug inside the handler, not a subroutine's throw). */
gw.addSubroutine("crashOne", (mine: number) => {
  const others = gw.snapshot().handlers.filter((h) => h.handlerId !== mine && h.state !== "idle");
  const victim = others[Math.floor(Math.random() * others.length)];
  return victim ? crashHandlerForTest(gw, victim.handlerId, "soak: injected crash") && victim.handlerId : 0;
});
await gw.start();
process.stdout.write(`PORT ${gw.port}\n`);
process.once("SIGTERM", () => void gw.stop().then(() => process.exit(0)));
