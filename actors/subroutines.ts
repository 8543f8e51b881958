/**
 * The gateway's registry of named subroutines. A subroutine is called as
 * `fn(...args, kwargs)`; kwargs is always present and, for a batch send,
 * holds the bytes as `kwargs.buffer`.
 */
import { ErrorCode, InvalidArgumentError, describeThrown, type Kwargs } from "../protocol/index.js";

/** Any function; its parameters are whatever the caller sends. */
export type Subroutine = (...args: never[]) => unknown;

export type SubroutineKind = "function" | "generator";

/**
 * Runs a subroutine somewhere other than `fn` itself (a worker thread): gets the
 * positional args, the kwargs and a signal that aborts when the caller's deadline
 * passes or the session ends.
 */
export type SubroutineInvoker = (args: readonly unknown[], kwargs: Kwargs, signal: AbortSignal | undefined) => unknown;

export interface RegisteredSubroutine {
  readonly name: string;
  readonly fn: Subroutine;
  /** Declared generator functions (sync or async) are streams; others are batch calls. */
  readonly kind: SubroutineKind;
  /** Set for a subroutine that runs on a worker-thread pool: how to run it there. */
  readonly invoke?: SubroutineInvoker;
  /** The module URL of the worker-thread pool it runs on, for snapshots. */
  readonly thread?: string;
}

/**
 * The thread a subroutine ran on failed (a worker that exited, threw outside the
 * subroutine, or was terminated). The handler treats it as its own crash: the
 * supervisor restarts it within budget and the caller gets HandlerCrashedError.
 */
export class ThreadCrash extends Error {
  override readonly name = "ThreadCrash";
}

/**
 * A subroutine's result or stream item that cannot leave its worker thread (a function
 * inside an object): answered as SWARMNET_BAD_RESULT, as an unencodable result on the
 * event loop is.
 */
export class BadResult extends Error {
  override readonly name = "BadResult";
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
  /** The handler serving the client, and the client's routing id: as text when printable ASCII (swarmnet's clients: `c` + 24 hex digits), else in hex. */
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

/** An Error's stack, read without letting a hostile value throw. */
export function stackOf(error: unknown): string | undefined {
  try {
    return error instanceof Error && typeof error.stack === "string" ? error.stack : undefined;
  } catch {
    return undefined;
  }
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
    // Whatever was thrown (a Proxy, a getter that throws, a huge string), described without throwing.
    const { message, name } = describeThrown(failure.error);
    const stack = this.#reporting.remoteStack ? stackOf(failure.error) : undefined;
    return { code: ErrorCode.REMOTE, message, ...(name !== undefined ? { name } : {}), ...(stack !== undefined ? { stack } : {}) };
  }

  add(name: string, fn: Subroutine, thread?: { invoke: SubroutineInvoker; module: string; kind: SubroutineKind }): void {
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw new InvalidArgumentError(
        `addSubroutine: name must match ${NAME_PATTERN} (letters, digits, _ . : -), got ${JSON.stringify(name)}`,
      );
    }
    if (typeof fn !== "function") {
      throw new InvalidArgumentError(`addSubroutine: '${name}' must be a function, got ${typeof fn}`);
    }
    this.#entries.set(
      name,
      thread === undefined ? { name, fn, kind: kindOf(fn) } : { name, fn, kind: thread.kind, invoke: thread.invoke, thread: thread.module },
    );
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
    return [...this.#entries.values()]
      .map((e) => ({ name: e.name, stream: e.kind === "generator" }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}

/**
 * Calls `fn(...args, kwargs)` (or runs it on its worker thread, where `signal`
 * aborts it); the cast is where untyped wire data meets user code.
 */
export function invokeSubroutine(entry: RegisteredSubroutine, args: readonly unknown[], kwargs: Kwargs, signal?: AbortSignal): unknown {
  if (entry.invoke !== undefined) return entry.invoke(args, kwargs, signal);
  return (entry.fn as (...a: unknown[]) => unknown)(...args, kwargs);
}
