/**
 * The subroutines the conformance cases (cases.json) call, and the checks that
 * decide whether an outcome matches a case: one definition for both clients.
 */
import { expect } from "vitest";
import type { Gateway } from "../../runtime/index.js";

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

/** JSON for a case: bytes as {"$bytes": hex}. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What running one case produced, in the same shape from either client. */
export interface Outcome {
  readonly name: string;
  readonly value?: Json;
  readonly error?: string;
  readonly remoteName?: string | null;
  readonly message?: string;
  readonly count?: number;
  readonly inOrder?: boolean;
  readonly bytes?: number;
  readonly values?: Json[];
  readonly aborted?: boolean;
  readonly pingAfter?: boolean;
  readonly reply?: Record<string, Json>;
}

export interface Case {
  readonly name: string;
  readonly kind: "call" | "stream" | "wire";
  readonly expect: Record<string, Json>;
  readonly [field: string]: unknown;
}

/** Asserts that `outcome` is what `c` expects (the same check for both clients). */
export function checkOutcome(c: Case, outcome: Outcome | undefined, who: string): void {
  const label = `${who}: ${c.name}`;
  expect(outcome, label).toBeDefined();
  if (c.kind === "wire") {
    expect(outcome!.reply, label).toMatchObject(c.expect);
    return;
  }
  const got: Record<string, unknown> = {};
  for (const key of Object.keys(c.expect)) got[key] = (outcome as unknown as Record<string, unknown>)[key];
  expect(got, label).toEqual(c.expect);
}
