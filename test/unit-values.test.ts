import { describe, expect, it } from "vitest";
import {
  MAX_TIMER_DELAY_MS,
  clearLongTimeout,
  decode,
  describeThrown,
  encode,
  normalizeIntegers,
  setLongTimeout,
  wireValueProblem,
} from "../protocol/index.js";

describe("describeThrown - any thrown value becomes a message, without throwing", () => {
  it.each([
    [new TypeError("bad type"), "bad type", "TypeError"],
    [{ message: "disk full" }, "disk full", undefined],
    ["a string", "a string", undefined],
    [undefined, "threw undefined", undefined],
    [null, "threw null", undefined],
    [42, "threw 42", undefined],
    [Symbol("s"), "threw Symbol(s)", undefined],
  ])("%s", (value, message, name) => {
    expect(describeThrown(value)).toEqual({ message, name });
  });

  it("objects String() cannot convert, Proxies whose traps throw, huge messages", () => {
    expect(describeThrown(Object.create(null)).message).toMatch(/null prototype/);
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error("trap");
        },
        getPrototypeOf: () => {
          throw new Error("trap");
        },
      },
    );
    expect(typeof describeThrown(hostile).message).toBe("string");
    expect(describeThrown(new Error("x".repeat(100_000))).message.length).toBeLessThan(5_000);
  });
});

describe("wireValueProblem and normalizeIntegers", () => {
  it("finds -0, lone surrogates (in values and keys), cycles; passes what round-trips", () => {
    expect(wireValueProblem(-0)).toMatch(/-0/);
    expect(wireValueProblem({ a: [1, { b: -0 }] })).toMatch(/value\.a\[1\]\.b is -0/);
    expect(wireValueProblem("\udc00")).toMatch(/surrogate/);
    expect(wireValueProblem({ ["k\ud800"]: 1 })).toMatch(/key/);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(wireValueProblem(cyclic)).toMatch(/deeper|cyclic/);
    expect(wireValueProblem({ s: "😀", n: 0, b: new Uint8Array([0xed, 0xa0, 0x80]), m: new Map([["k", 1.5]]) })).toBeUndefined();
  });

  it("8-byte CBOR integers up to 2^53 decode as numbers, larger ones stay BigInt", () => {
    // [n, 1] with n written in the 8-byte form, as Python's cbor2 may write any integer.
    const eight = (n: bigint): Uint8Array => {
      const bytes = Buffer.from([0x82, 0x1b, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]);
      bytes.writeBigUInt64BE(n, 2);
      return bytes;
    };
    expect(decode(eight(2n ** 40n))).toEqual([2 ** 40, 1]);
    expect(decode(eight(2n ** 53n))).toEqual([2 ** 53, 1]);
    expect(decode(eight(2n ** 53n + 1n))).toEqual([2n ** 53n + 1n, 1]);
    expect(normalizeIntegers({ a: [5n, { b: -7n }] })).toEqual({ a: [5, { b: -7 }] });
    expect(decode(encode({ big: 2n ** 64n - 1n }))).toEqual({ big: 2n ** 64n - 1n });
  });
});

describe("setLongTimeout", () => {
  it("a delay past 2^31 ms is armed as a chain (it does not fire at once); a short one fires", async () => {
    let fired = false;
    const long = setLongTimeout(() => (fired = true), MAX_TIMER_DELAY_MS + 10);
    // Node alone would fire the long one after 1 ms, before this 5 ms one.
    const short = await new Promise<boolean>((resolve) => setLongTimeout(() => resolve(true), 5));
    expect(short).toBe(true);
    expect(fired).toBe(false);
    clearLongTimeout(long);
  });
});
