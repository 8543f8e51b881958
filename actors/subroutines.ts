/**
 * The gateway's registry of named subroutines. A subroutine is called as
 * `fn(...args, kwargs)`; kwargs is always present and, for a batch send,
 * holds the bytes as `kwargs.buffer`.
 */
import { InvalidArgumentError, type Kwargs } from "../protocol/index.js";

/** Any function; its parameters are whatever the caller sends. */
export type Subroutine = (...args: never[]) => unknown;

export type SubroutineKind = "function" | "generator";

export interface RegisteredSubroutine {
  readonly name: string;
  readonly fn: Subroutine;
  /** Declared generator functions (sync or async) are streams; others are batch calls. */
  readonly kind: SubroutineKind;
}

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,255}$/;

function kindOf(fn: Subroutine): SubroutineKind {
  const ctor = (fn as { constructor?: { name?: string } }).constructor?.name;
  return ctor === "GeneratorFunction" || ctor === "AsyncGeneratorFunction" ? "generator" : "function";
}

export class SubroutineRegistry {
  readonly #entries = new Map<string, RegisteredSubroutine>();

  add(name: string, fn: Subroutine): void {
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw new InvalidArgumentError(
        `addSubroutine: name must match ${NAME_PATTERN} (letters, digits, _ . : -), got ${JSON.stringify(name)}`,
      );
    }
    if (typeof fn !== "function") {
      throw new InvalidArgumentError(`addSubroutine: '${name}' must be a function, got ${typeof fn}`);
    }
    this.#entries.set(name, { name, fn, kind: kindOf(fn) });
  }

  remove(name: string): boolean {
    return this.#entries.delete(name);
  }

  get(name: string): RegisteredSubroutine | undefined {
    return this.#entries.get(name);
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }
}

/** Calls `fn(...args, kwargs)`; the cast is where untyped wire data meets user code. */
export function invokeSubroutine(entry: RegisteredSubroutine, args: readonly unknown[], kwargs: Kwargs): unknown {
  return (entry.fn as (...a: unknown[]) => unknown)(...args, kwargs);
}
