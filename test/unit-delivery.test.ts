/** The delivery channel on its own: numbering, acks, duplicates, gaps, replays, stale failures, the cap. */
import { describe, expect, it, vi } from "vitest";
import { Accept, DeliveryChannel, LinkKind, STALL_MS, headerAck, headerKind, headerSeq } from "../actors/delivery.js";

function wire(): {
  channel: DeliveryChannel;
  sent: Array<{ kind: number; seq: number; ack: number; tag: number }>;
  overflowed: () => boolean;
} {
  const sent: Array<{ kind: number; seq: number; ack: number; tag: number }> = [];
  let overflowed = false;
  const channel = new DeliveryChannel({
    write: (frames, tag) => sent.push({ kind: headerKind(frames[0]!), seq: headerSeq(frames[0]!), ack: headerAck(frames[0]!), tag }),
    onOverflow: () => void (overflowed = true),
    maxMessages: 8,
  });
  return { channel, sent, overflowed: () => overflowed };
}

const msg = (n: number): Uint8Array[] => [Buffer.from([0xa1, n])];

describe("DeliveryChannel", () => {
  it("numbers what it sends, keeps it until acknowledged, and replays the rest in order", () => {
    const { channel, sent } = wire();
    for (let i = 0; i < 5; i++) channel.send(msg(i));
    expect(sent.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    channel.onAck(2);
    expect(channel.unacked).toBe(3);
    channel.pause();
    channel.send(msg(5)); // kept, not sent while down
    expect(sent).toHaveLength(5);
    channel.replayFrom(3);
    expect(sent.slice(5).map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(channel.stats).toMatchObject({ sent: 6, resent: 2, replays: 1 });
  });

  it("delivers each number once and in order; a gap is never delivered past and asks for a replay once", () => {
    const { channel, sent } = wire();
    expect(channel.accept(1)).toBe(Accept.DELIVER);
    expect(channel.accept(1)).toBe(Accept.DUPLICATE);
    expect(channel.accept(3)).toBe(Accept.GAP);
    expect(channel.accept(4)).toBe(Accept.GAP);
    expect(sent.filter((m) => m.kind === LinkKind.REPLAY)).toEqual([expect.objectContaining({ ack: 1 })]);
    expect(channel.accept(2)).toBe(Accept.DELIVER);
    expect(channel.accept(3)).toBe(Accept.DELIVER);
    expect(channel.received).toBe(3);
  });

  it("ignores a send failure from before a replay, and retries a full queue from the failed message", () => {
    vi.useFakeTimers();
    const { channel, sent } = wire();
    for (let i = 0; i < 3; i++) channel.send(msg(i));
    const stale = sent[1]!.tag;
    channel.replayFrom(0); // a resume: everything again, in a new epoch
    channel.failed(stale, false);
    expect(channel.up).toBe(true);
    const current = sent.at(-2)!.tag; // seq 2 of this epoch
    channel.failed(current, true);
    expect(channel.up).toBe(false);
    vi.advanceTimersByTime(10);
    vi.useRealTimers();
    expect(channel.up).toBe(true);
    expect(sent.slice(-2).map((m) => m.seq)).toEqual([2, 3]);
  });

  it("bare ACKs are its retransmission timer: no progress across two of them replays what was sent before the first", () => {
    const { channel, sent } = wire();
    for (let i = 0; i < 3; i++) channel.send(msg(i));
    channel.onBareAck(1, 0); // a heartbeat: seq 1 arrived, 2 and 3 are on their way
    expect(sent).toHaveLength(3);
    channel.send(msg(3));
    channel.onBareAck(3, 100); // progress: nothing to replay
    expect(sent).toHaveLength(4);
    channel.onBareAck(3, 100 + STALL_MS - 1); // no progress, but not for long yet
    expect(sent).toHaveLength(4);
    channel.onBareAck(3, 100 + STALL_MS); // no progress for STALL_MS while 4 was sent before: it was lost
    expect(sent.slice(4).map((m) => m.seq)).toEqual([4]);
    channel.onBareAck(4, 10_000); // all there
    channel.onBareAck(4, 20_000); // nothing outstanding: no replay
    expect(sent).toHaveLength(5);
  });

  it("fails loudly past its cap instead of dropping", () => {
    const { channel, overflowed } = wire();
    for (let i = 0; i < 9; i++) channel.send(msg(i));
    expect(overflowed()).toBe(true);
  });
});
