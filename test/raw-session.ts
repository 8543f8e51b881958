/**
 * A raw DEALER that speaks swarmnet's delivery layer by hand, for tests that
 * send hostile or hand-made messages inside a session: once welcomed, every
 * message it sends gets a delivery header in front of its envelope (the next
 * seq, the ack, the session secret) and every numbered message it receives is
 * unwrapped; control
 * messages (acks, resumes) are skipped.
 */
import { Dealer } from "zeromq";
import { LinkKind, afterHeader, headerKind, headerSeq, isHeader, makeHeader } from "../actors/delivery.js";
import { decode } from "../protocol/index.js";

export class RawSession {
  readonly socket: Dealer;
  #secret: Uint8Array | undefined;
  #seq = 0;
  #received = 0;

  constructor(endpoint: string) {
    this.socket = new Dealer({ linger: 0 });
    this.socket.connect(endpoint);
  }

  /** Sends frames: plain before the welcome, behind a numbered delivery header after it. */
  async send(frames: Uint8Array[]): Promise<void> {
    if (this.#secret === undefined) await this.socket.send(frames);
    else await this.socket.send([makeHeader(LinkKind.DATA, ++this.#seq, this.#received, this.#secret, frames[0]), ...frames.slice(1)]);
  }

  /** The next message's frames (envelope first), unwrapped; control messages are skipped. */
  async receive(): Promise<Uint8Array[]> {
    for (;;) {
      const frames = await this.socket.receive();
      const first = frames[0];
      if (isHeader(first)) {
        if (headerKind(first) !== LinkKind.DATA && headerKind(first) !== LinkKind.UNNUMBERED) continue;
        if (headerKind(first) === LinkKind.DATA) this.#received = headerSeq(first);
        return [afterHeader(first, false), ...frames.slice(1)];
      }
      const message = decode(first!) as { type?: unknown; secret?: unknown };
      if (message.type === "welcome" && message.secret instanceof Uint8Array) this.#secret = message.secret;
      return frames;
    }
  }

  /** Sends and waits for the answer with the same id (other messages are skipped). */
  async request(frames: Uint8Array[]): Promise<Record<string, unknown>> {
    await this.send(frames);
    const sentId = (decode(frames[0]!) as { id: number }).id;
    for (;;) {
      const [envelope] = await this.receive();
      const message = decode(envelope!) as Record<string, unknown>;
      if (message["id"] === sentId) return message;
    }
  }

  close(): void {
    this.socket.close();
  }
}
