/**
 * What a subroutine threw, as text that can cross the wire. Anything may be
 * thrown in JavaScript: an Error, a string, `undefined`, `{ message: "disk
 * full" }`, an object without a prototype (which `String()` cannot convert),
 * a Proxy whose traps throw. Every place that turns a thrown value into a
 * message goes through here, so none of them can throw in turn.
 */
import { inspect } from "node:util";

/** Longest message kept from a thrown value; the rest is cut (a thrown value can be huge). */
export const MAX_THROWN_MESSAGE_LENGTH = 4096;

export interface ThrownDescription {
  /** The message: an Error's own, a `message` string property, the string thrown, or a short rendering of the value. */
  readonly message: string;
  /** The class name for an Error (`TypeError`, a custom one), else undefined. */
  readonly name: string | undefined;
}

function cut(text: string): string {
  return text.length > MAX_THROWN_MESSAGE_LENGTH ? `${text.slice(0, MAX_THROWN_MESSAGE_LENGTH)}...` : text;
}

function stringProperty(value: object, key: string): string | undefined {
  try {
    const found = (value as Record<string, unknown>)[key];
    return typeof found === "string" ? found : undefined;
  } catch {
    return undefined;
  }
}

function render(value: unknown): string {
  try {
    return inspect(value, {
      depth: 2,
      breakLength: Infinity,
      maxArrayLength: 20,
      maxStringLength: MAX_THROWN_MESSAGE_LENGTH,
      customInspect: false,
    });
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * `value instanceof type`, but never throws: a revoked Proxy, or one whose
 * `getPrototypeOf` trap throws, is an instance of nothing. Use it for every
 * inspection of a caught (user-thrown) value.
 */
export function isInstance<T>(value: unknown, type: abstract new (...args: never[]) => T): value is T {
  try {
    return value instanceof type;
  } catch {
    return false;
  }
}

/**
 * Describes any thrown value; never throws.
 *
 * ```ts
 * describeThrown(new RangeError("too big"))   // { message: "too big", name: "RangeError" }
 * describeThrown({ message: "disk full" })    // { message: "disk full", name: undefined }
 * describeThrown(Object.create(null))         // { message: "threw a non-Error value: [Object: null prototype] {}", ... }
 * ```
 */
export function describeThrown(value: unknown): ThrownDescription {
  if (typeof value === "string") return { message: cut(value), name: undefined };
  if (value === undefined || value === null) return { message: `threw ${String(value)}`, name: undefined };
  if (typeof value === "object" || typeof value === "function") {
    const isError = isInstance(value, Error);
    const message = stringProperty(value, "message");
    const name = isError ? stringProperty(value, "name") : undefined;
    if (message !== undefined && (message.length > 0 || isError))
      return { message: cut(message.length > 0 ? message : (name ?? "Error")), name };
    return { message: cut(`threw a non-Error value: ${render(value)}`), name };
  }
  // A bigint renders as `10n`, a symbol as `Symbol(x)`, a number as itself.
  return { message: cut(`threw ${render(value)}`), name: undefined };
}
