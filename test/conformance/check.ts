/**
 * Whether an outcome matches a conformance case (cases.json): one check for the
 * outcomes of both clients.
 */
import { expect } from "vitest";

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
