/**
 * The subroutines the conformance cases (cases.json) call. Run it to serve them
 * for another client implementation:
 *
 *   npx tsx test/conformance/gateway.ts [port]      (prints the endpoint; Ctrl-C stops)
 */
import { fileURLToPath } from "node:url";
import { Gateway } from "../../runtime/index.js";

export function addConformanceSubroutines(gw: Gateway): void {
  gw.addSubroutine("echo", (value: unknown) => value);
  gw.addSubroutine("describe", (...all: unknown[]) => ({ args: all.slice(0, -1), kwargs: all.at(-1) }));
  gw.addSubroutine("bytes", (n: number) => Uint8Array.from({ length: n }, (_, i) => i & 255));
  gw.addSubroutine("boom", () => {
    throw new TypeError("bad thing");
  });
  gw.addSubroutine("length", (kwargs: { buffer: Uint8Array }) => kwargs.buffer.length);
  gw.addSubroutine("sum_send", (a: number, b: number, kwargs: { buffer: Uint8Array }) => a + b + kwargs.buffer.length);
  gw.addSubroutine("count", function* (n: number) {
    for (let i = 0; i < n; i++) {
      const item = Buffer.alloc(8);
      item.writeUInt32BE(i, 4);
      yield [i, item];
    }
  });
  gw.addSubroutine("values", function* (n: number) {
    for (let i = 0; i < n; i++) yield [i, { i, sq: i * i }];
  });
  gw.addSubroutine("marker", function* () {
    for (let i = 0; i < 3; i++) yield [i, Buffer.from([i])];
    yield [-1, null];
    yield [3, Buffer.from([3])];
  });
  gw.addSubroutine("gen_boom", function* () {
    yield [0, Buffer.from([0])];
    yield [1, Buffer.from([1])];
    throw new RangeError("generator failed");
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const gateway = new Gateway({ host: "127.0.0.1", port: Number(process.argv[2] ?? 0), maxPoolSize: 64 });
  addConformanceSubroutines(gateway);
  await gateway.start();
  console.log(gateway.endpoint);
  process.once("SIGINT", () => void gateway.stop());
  await gateway.closed;
}
