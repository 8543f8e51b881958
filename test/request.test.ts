/**
 * One request builder (actors/request.ts) behind both ways in: the Client
 * class and the composable client actor refuse the same bad arguments with
 * the same code and the same words, only the method's name in front differs.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { ErrorCode, type Client, type Gateway } from "../runtime/index.js";
import { swarmClientMachine, type SwarmClientCommand, type SwarmClientEmitted } from "../runtime/actors.js";
import { controllerFor, startGateway, within } from "./helpers.js";

/** What a call refused with: a synchronous throw or a rejection, as the method does it. */
async function refusal(call: () => unknown): Promise<{ code: string; message: string }> {
  try {
    await call();
  } catch (error) {
    const { code, message } = error as { code: string; message: string };
    return { code, message };
  }
  throw new Error("the call was not refused");
}

/** A message without its leading "method: ". */
const words = (message: string): string => message.slice(message.indexOf(": ") + 2);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("one request builder", () => {
  it("the Client class and the client actor refuse the same bad arguments with the same code and words", async () => {
    const gw: Gateway = await startGateway();
    cleanups.push(() => gw.stop());
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw);
    cleanups.push(() => controller.close());
    const client: Client = await controller.getClient();

    const actor = createActor(swarmClientMachine, { input: { endpoint: gw.endpoint } });
    const errors = new Map<string | number, { code: string; message: string }>();
    let wake: (() => void) | undefined;
    actor.on("swarmnet.error", (e: Extract<SwarmClientEmitted, { type: "swarmnet.error" }>) => {
      errors.set(e.requestId, { code: e.code, message: e.message });
      wake?.();
    });
    actor.start();
    cleanups.push(async () => {
      actor.stop();
    });
    const actorRefusal = (command: SwarmClientCommand & { requestId: string }): Promise<{ code: string; message: string }> =>
      within(
        new Promise((resolve) => {
          const check = (): void => {
            const found = errors.get(command.requestId);
            if (found) resolve(found);
          };
          wake = check;
          actor.send(command);
          check();
        }),
        5_000,
        `actor's answer to ${command.requestId}`,
      );

    const bytes = new Uint8Array([1]);
    const cases: Array<[string, () => unknown, SwarmClientCommand & { requestId: string }]> = [
      ["empty name", () => client.getSubroutineBatch(""), { type: "call", requestId: "a", name: "" }],
      [
        "args not an array",
        () => client.getSubroutineBatch("echo", {} as unknown[]),
        { type: "call", requestId: "b", name: "echo", args: {} as unknown[] },
      ],
      [
        "kwargs not a plain object",
        () => client.getSubroutineBatch("echo", [], [] as never),
        { type: "call", requestId: "c", name: "echo", kwargs: [] as never },
      ],
      [
        "timeoutMs 0",
        () => client.getSubroutineBatch("echo", [], {}, { timeoutMs: 0 }),
        { type: "call", requestId: "d", name: "echo", timeoutMs: 0 },
      ],
      [
        "buffer not bytes",
        () => client.sendSubroutineBatch("echo", "x" as never),
        { type: "send", requestId: "e", name: "echo", buffer: "x" as never },
      ],
      [
        "kwargs.buffer taken",
        () => client.sendSubroutineBatch("echo", bytes, [], { buffer: 1 }),
        { type: "send", requestId: "f", name: "echo", buffer: bytes, kwargs: { buffer: 1 } },
      ],
      ["window 0", () => client.stream("echo", [], {}, { window: 0 }), { type: "stream", requestId: "g", name: "echo", window: 0 }],
      [
        "-0 cannot cross the wire",
        () => client.getSubroutineBatch("echo", [-0]),
        { type: "call", requestId: "h", name: "echo", args: [-0] },
      ],
    ];
    for (const [what, call, command] of cases) {
      const fromClass = await refusal(call);
      const fromActor = await actorRefusal(command);
      expect(fromClass.code, what).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(fromActor.code, what).toBe(ErrorCode.INVALID_ARGUMENT);
      expect(words(fromActor.message), what).toBe(words(fromClass.message));
    }
    // Neither layer let a bad request reach the gateway; both still serve.
    await expect(client.getSubroutineBatch("echo", [5])).resolves.toBe(5);
  });
});
