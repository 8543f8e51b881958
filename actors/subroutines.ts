/**
 * The gateway's registry of named subroutines. A subroutine is called as
 * `fn(...args, kwargs)`; kwargs is always present and, for a batch send,
 * holds the bytes as `kwargs.buffer`.
 */
import { ErrorCode, InvalidArgumentError, type Kwargs } from "../protocol/index.js";

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

/** A subroutine's throw, as the gateway logs it. */
export interface SubroutineFailure {
  /** The subroutine's name. */
  readonly name: string;
  /** "call" (batch get or send) or "stream". */
  readonly kind: "call" | "stream";
  /** What it threw. */
  readonly error: unknown;
  /** The handler serving the client, and the client's routing id (hex). */
  readonly handlerId: number;
  readonly client: string;
  readonly requestId: number;
}

/** The `error` reply for a subroutine's throw: its message and class name, and its stack when the gateway sends stacks. */
export interface FailureReply {
  readonly code: string;
  readonly message: string;
  readonly name?: string;
  readonly stack?: string;
}

export interface RegistryReporting {
  /** Send the remote stack with the error (Gateway option `remoteStack`). @default false */
  remoteStack?: boolean;
  /** Told of every subroutine throw (the gateway logs it). */
  onFailure?: (failure: SubroutineFailure) => void;
}

export class SubroutineRegistry {
  readonly #entries = new Map<string, RegisteredSubroutine>();
  #reporting: RegistryReporting = {};

  /** How subroutine throws are reported: logged on the gateway, and whether the stack goes to the client. */
  report(reporting: RegistryReporting): void {
    this.#reporting = reporting;
  }

  /** A subroutine threw: tell the gateway's log and build the reply for the client. */
  failure(failure: SubroutineFailure): FailureReply {
    try {
      this.#reporting.onFailure?.(failure);
    } catch {
      // A logger's throw must not change what the client gets.
    }
    const error = failure.error;
    if (!(error instanceof Error)) return { code: ErrorCode.REMOTE, message: String(error) };
    return {
      code: ErrorCode.REMOTE,
      message: error.message,
      name: error.name,
      ...(this.#reporting.remoteStack && typeof error.stack === "string" ? { stack: error.stack } : {}),
    };
  }

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

  /** Every subroutine with whether it streams (a declared generator function), sorted by name. */
  list(): { name: string; stream: boolean }[] {
    return [...this.#entries.values()].map((e) => ({ name: e.name, stream: e.kind === "generator" })).sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}

/** Calls `fn(...args, kwargs)`; the cast is where untyped wire data meets user code. */
export function invokeSubroutine(entry: RegisteredSubroutine, args: readonly unknown[], kwargs: Kwargs): unknown {
  return (entry.fn as (...a: unknown[]) => unknown)(...args, kwargs);
}
