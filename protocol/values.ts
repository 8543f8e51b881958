/**
 * Which values CBOR (as swarmnet uses cbor-x) cannot carry as they are, found
 * before anything is sent, so that a value either arrives as sent or is
 * refused with a reason:
 * - `-0`: cbor-x writes it as the integer 0 (the sign would be lost);
 * - a string with a lone UTF-16 surrogate: CBOR text must be UTF-8, which
 *   cannot hold it (it would arrive as U+FFFD);
 * - nesting deeper than MAX_VALUE_DEPTH (also what a cyclic value looks like):
 *   the encoder would overflow the stack;
 * - an array, Set, Map or object with more than LIMITS.maxCollectionLength
 *   items or keys: it encodes, but the receiver's decoder refuses it.
 * Functions, symbols and other unencodable types are left to the encoder,
 * whose throw is caught where it encodes (encode-or-refuse).
 */

import { LIMITS } from "./limits.js";
import { describeThrown } from "./thrown.js";

/** With the `u` flag a surrogate pair is one code point: this matches only a lone surrogate. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function wellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/** Deepest nesting of arrays, maps and objects checked and sent. */
export const MAX_VALUE_DEPTH = 64;

/**
 * Why `value` cannot cross the wire unchanged, or undefined when it can.
 * Bytes (Uint8Array) are not looked into. Never throws.
 */
export function wireValueProblem(value: unknown): string | undefined {
  try {
    return problemAt(value, "value", 0);
  } catch (err) {
    // A getter or Proxy trap threw while we looked: the encoder would hit it too.
    // (describeThrown never throws, whatever the getter threw.)
    return `reading it threw: ${describeThrown(err).message}`;
  }
}

function problemAt(value: unknown, path: string, depth: number): string | undefined {
  switch (typeof value) {
    case "number":
      return Object.is(value, -0) ? `${path} is -0, which CBOR would carry as 0` : undefined;
    case "string":
      return wellFormed(value) ? undefined : `${path} is a string with a lone UTF-16 surrogate, which UTF-8 cannot carry`;
    case "object": {
      if (value === null || value instanceof Uint8Array || ArrayBuffer.isView(value)) return undefined;
      if (depth >= MAX_VALUE_DEPTH) return `${path} nests deeper than ${MAX_VALUE_DEPTH} levels (or is cyclic)`;
      const tooMany = (count: number, what: string): string | undefined =>
        count > LIMITS.maxCollectionLength
          ? `${path} has ${count} ${what}, over the ${LIMITS.maxCollectionLength} a decoder accepts`
          : undefined;
      if (Array.isArray(value)) {
        const over = tooMany(value.length, "items");
        if (over !== undefined) return over;
        for (let i = 0; i < value.length; i++) {
          const found = problemAt(value[i], `${path}[${i}]`, depth + 1);
          if (found !== undefined) return found;
        }
        return undefined;
      }
      if (value instanceof Map) {
        const over = tooMany(value.size, "entries");
        if (over !== undefined) return over;
        for (const [k, v] of value) {
          const found = problemAt(k, `${path} key`, depth + 1) ?? problemAt(v, `${path}.get(${String(k)})`, depth + 1);
          if (found !== undefined) return found;
        }
        return undefined;
      }
      if (value instanceof Set) {
        const over = tooMany(value.size, "items");
        if (over !== undefined) return over;
        for (const v of value) {
          const found = problemAt(v, `${path} item`, depth + 1);
          if (found !== undefined) return found;
        }
        return undefined;
      }
      const keys = Object.keys(value);
      const over = tooMany(keys.length, "keys");
      if (over !== undefined) return over;
      for (const key of keys) {
        const keyProblem = wellFormed(key) ? undefined : `${path} has a key with a lone UTF-16 surrogate`;
        const found = keyProblem ?? problemAt((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Largest integer magnitude a JavaScript number holds exactly, as a bigint: 2^53. */
const MAX_EXACT_BIGINT = 2n ** 53n;

/**
 * Turns 64-bit CBOR integers that a number holds exactly (|n| <= 2^53) into
 * numbers, in place, wherever they sit in a decoded value. cbor-x returns
 * every integer written with 8 bytes as a BigInt; Python's cbor2 and other
 * encoders may pick that width for small values too, and a subroutine doing
 * `a + 1` would throw on a BigInt. Larger ones stay BigInt (exact).
 */
export function normalizeIntegers(value: unknown, depth = 0): unknown {
  if (typeof value === "bigint") return value <= MAX_EXACT_BIGINT && value >= -MAX_EXACT_BIGINT ? Number(value) : value;
  if (typeof value !== "object" || value === null || value instanceof Uint8Array || depth > MAX_VALUE_DEPTH) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "bigint" || (typeof item === "object" && item !== null)) value[i] = normalizeIntegers(item, depth + 1);
    }
  } else if (value instanceof Map) {
    for (const [k, v] of value) value.set(k, normalizeIntegers(v, depth + 1));
  } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item === "bigint" || (typeof item === "object" && item !== null)) record[key] = normalizeIntegers(item, depth + 1);
    }
  }
  return value;
}
