/**
 * A client transport that says goodbye when it is dropped mid-session.
 *
 * The client machine closes its transport from its receive-loop actor's
 * cleanup. On a clean close it has already exchanged `session.close` /
 * `session.closed`; but an actor stopped from outside (its parent left the
 * state that invoked it) runs no exit actions, and a DEALER with `linger: 0`
 * drops whatever is queued. Without a goodbye the gateway would hold the slot
 * until the session lease runs out. So when a welcomed session is closed
 * without one, this link sends `session.close` itself and keeps the socket
 * open until `session.closed` comes back or `goodbyeMs` passes.
 */
import { ErrorCode, clearLongTimeout, decode, encode, setLongTimeout, type LongTimeout } from "../protocol/index.js";
import type { ClientTransport, ClientTransportHandlers, Frames } from "../transports/transport.js";

const GOODBYE: Frames = [encode({ type: "session.close", id: 0 })];

type LinkState = "open" | "closing" | "goodbye" | "closed";

export class SessionLink implements ClientTransport {
  readonly #inner: ClientTransport;
  readonly #goodbyeMs: number;
  #state: LinkState = "open";
  #welcomed = false;
  #up = true;
  #timer: LongTimeout | undefined;

  constructor(inner: ClientTransport, goodbyeMs: number) {
    this.#inner = inner;
    this.#goodbyeMs = goodbyeMs;
  }

  /** The client machine is closing the session itself: no goodbye needed. */
  markClosing(): void {
    if (this.#state === "open") this.#state = "closing";
  }

  start(handlers: ClientTransportHandlers): void {
    this.#inner.start({
      onMessage: (frames) => {
        // Only the first answers (until the welcome) and the goodbye's answer are decoded here;
        // stream traffic passes through untouched.
        if (!this.#welcomed || this.#state === "goodbye") this.#peek(frames);
        if (this.#state !== "goodbye" && this.#state !== "closed") handlers.onMessage(frames);
      },
      onError: (error) => {
        if (this.#state === "goodbye") this.#finish();
        else handlers.onError(error);
      },
      onLink: (up) => {
        this.#up = up;
        handlers.onLink?.(up);
      },
      onAttemptFailed: (failure) => handlers.onAttemptFailed?.(failure),
    });
  }

  /** Passed on: an idle inner transport may stop holding the event loop. */
  idle(idle: boolean): void {
    this.#inner.idle?.(idle);
  }

  send(frames: Frames): void {
    if (this.#state !== "closed") this.#inner.send(frames);
  }

  close(): void {
    if (this.#state === "goodbye" || this.#state === "closed") return;
    if (this.#state === "open" && this.#welcomed && this.#up) {
      this.#state = "goodbye";
      this.#inner.send(GOODBYE);
      this.#timer = setLongTimeout(() => this.#finish(), this.#goodbyeMs, { unref: true });
      return;
    }
    this.#finish();
  }

  #peek(frames: Frames): void {
    const envelope = frames[0];
    if (envelope === undefined) return;
    let message: { type?: unknown; code?: unknown } | null;
    try {
      message = decode(envelope) as { type?: unknown; code?: unknown } | null;
    } catch {
      return; // the client machine reports malformed frames
    }
    const type = message?.type;
    if (type === "welcome") this.#welcomed = true;
    if (this.#state !== "goodbye") return;
    // Done when the gateway acknowledges, or says it has no session for us any more.
    const noSession = type === "error" && message?.code === ErrorCode.SESSION_ENDED;
    if (type === "session.closed" || type === "session.ended" || noSession) this.#finish();
  }

  #finish(): void {
    clearLongTimeout(this.#timer);
    this.#state = "closed";
    this.#inner.close();
  }
}
