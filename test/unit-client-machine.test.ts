/**
 * The client machine alone (actors/client.ts): no gateway, no sockets. A
 * scripted transport answers what a gateway would, and the test asserts the
 * machine's exact sequence of states and the events that moved it.
 */
import { describe, expect, it } from "vitest";
import { createActor, waitFor } from "xstate";
import { clientMachine, eventFromGateway, type DataMessage, type DataSink, type PendingCall } from "../actors/client.js";
import { ErrorCode, decode, encode, type GatewayMessage } from "../protocol/index.js";
import type { ClientTransport, ClientTransportHandlers, Frames } from "../transports/transport.js";

/** What a gateway would answer: a welcome to the hello, two items and the end to a stream, session.closed to the goodbye. */
function scriptedGateway(): ClientTransport & { readonly sent: string[] } {
  let handlers: ClientTransportHandlers | undefined;
  const sent: string[] = [];
  // Answers arrive later, as from a socket: never inside the machine's own send.
  const answer = (message: object): void => queueMicrotask(() => handlers?.onMessage([encode(message)]));
  return {
    sent,
    start(h) {
      handlers = h;
    },
    send(frames: Frames) {
      const message = decode(frames[0]!) as { type: string; id: number };
      sent.push(message.type);
      if (message.type === "hello") {
        answer({ type: "welcome", id: 0, status: 200, handlerId: 7, v: 1, livenessMs: 10_000, secret: new Uint8Array(8), gw: 1 });
      } else if (message.type === "stream.open") {
        answer({
          type: "stream.items",
          id: message.id,
          items: [
            [0, -1, "a"],
            [1, -1, "b"],
          ],
        });
        answer({ type: "stream.end", id: message.id, count: 2 });
      } else if (message.type === "session.close") {
        answer({ type: "session.closed", id: 0 });
      }
    },
    close() {},
  };
}

describe("client machine", () => {
  it("connect -> stream -> close walks connecting, ready, streaming, ready, closing, closed and nothing else", async () => {
    const transport = scriptedGateway();
    const actor = createActor(clientMachine, {
      input: { transport, endpoint: "scripted", connectTimeoutMs: 1_000, closeTimeoutMs: 1_000 },
    });
    const states: string[] = [];
    const events: string[] = [];
    actor.subscribe((snapshot) => {
      if (states.at(-1) !== snapshot.value) states.push(String(snapshot.value));
    });
    actor.system.inspect((e) => {
      if (e.type === "@xstate.event" && e.actorRef === actor) events.push(e.event.type);
    });
    actor.start();
    await waitFor(actor, (s) => s.value === "ready", { timeout: 1_000 });
    expect(actor.getSnapshot().context.handlerId).toBe(7);

    const items: unknown[] = [];
    let settle!: { resolve: () => void; reject: (error: Error) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const sink: DataSink = {
      id: 1,
      onData(message: DataMessage) {
        if (message.type === "stream.items") for (const item of message.items) items.push(item[2]);
        // The stream's end reaches its sink; the sink tells the machine (as StreamReader does).
        if (message.type === "stream.end") actor.send({ type: "call.finished", id: 1 });
      },
    };
    const call: PendingCall = {
      id: 1,
      kind: "stream",
      frames: [encode({ type: "stream.open", id: 1, name: "sensor", args: [], kwargs: {}, window: 8, windowBytes: 1024 })],
      timeoutMs: 1_000,
      resolve: () => settle.resolve(),
      reject: (error) => settle.reject(error),
      sink,
      label: "stream of sensor",
    };
    actor.send({ type: "call", call });
    await done;
    expect(items).toEqual(["a", "b"]);

    actor.send({ type: "close" });
    await waitFor(actor, (s) => s.status === "done", { timeout: 1_000 });

    expect(states).toEqual(["connecting", "ready", "streaming", "ready", "closing", "closed"]);
    expect(events).toEqual(["xstate.init", "gateway.welcome", "call", "call.finished", "close", "gateway.closed"]);
    expect(transport.sent).toEqual(["hello", "stream.open", "session.close"]);
    expect(actor.getSnapshot().context.slot.completed).toBe(1);
  });

  it("the receive loop names what the gateway said", () => {
    const said = (message: object): string => eventFromGateway(message as GatewayMessage, undefined).type;
    expect(said({ type: "welcome", id: 0 })).toBe("gateway.welcome");
    expect(said({ type: "refused", id: 0 })).toBe("gateway.refused");
    expect(said({ type: "session.ended", id: 0 })).toBe("gateway.sessionEnded");
    expect(said({ type: "session.closed", id: 0 })).toBe("gateway.closed");
    expect(said({ type: "error", id: 3, code: ErrorCode.SESSION_ENDED, message: "no session" })).toBe("gateway.noSession");
    expect(said({ type: "error", id: 3, code: ErrorCode.REMOTE, message: "boom" })).toBe("gateway.answer");
    expect(said({ type: "pong", id: 3, data: "x" })).toBe("gateway.answer");
  });

  it("every state says what it is for (the inspector shows it)", () => {
    const missing = Object.entries(clientMachine.states)
      .filter(([, node]) => !node.description)
      .map(([name]) => name);
    expect(missing).toEqual([]);
  });
});
