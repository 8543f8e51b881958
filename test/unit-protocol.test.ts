import { describe, expect, it } from "vitest";
import { DataType, ErrorCode, bytesToInt, fromBytes, intToBytes, registerClass, strToBytes, toBytes } from "../runtime/index.js";
import { decode, encode, normalizeEndpoint } from "../runtime/internal.js";
import { parseClientMessage, parseGatewayMessage } from "../protocol/messages.js";
import { errorFromWire, PoolFullError, RemoteError } from "../protocol/errors.js";

describe("protocol validation", () => {
  it("accepts every well-formed client message", () => {
    expect(parseClientMessage({ type: "hello", id: 0, v: 1 }, false)).toEqual({ type: "hello", id: 0, v: 1 });
    expect(parseClientMessage({ type: "rpc.call", id: 3, name: "f", mode: "send", args: [1], kwargs: { a: 1 } }, true)).toMatchObject({
      name: "f",
      mode: "send",
    });
    expect(parseClientMessage({ type: "rpc.call", id: 3, name: "f", mode: "get" }, false)).toMatchObject({ args: [], kwargs: {} });
  });

  it.each([
    ["not a map", [1, 2]],
    ["no id", { type: "ping" }],
    ["negative id", { type: "ping", id: -1 }],
    ["fractional id", { type: "ping", id: 1.5 }],
    ["unknown type", { type: "nope", id: 1 }],
    ["name not a string", { type: "rpc.call", id: 1, name: 5, mode: "get" }],
    ["empty name", { type: "rpc.call", id: 1, name: "", mode: "get" }],
    ["bad mode", { type: "rpc.call", id: 1, name: "f", mode: "put" }],
    ["args not an array", { type: "rpc.call", id: 1, name: "f", mode: "get", args: {} }],
    ["kwargs not a map", { type: "rpc.call", id: 1, name: "f", mode: "get", kwargs: [] }],
    ["hello without version", { type: "hello", id: 1 }],
  ])("rejects %s with ProtocolError", (_, value) => {
    expect(() => parseClientMessage(value, false)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
  });

  it("a raw frame is only allowed on a batch send, and a batch send needs one", () => {
    expect(() => parseClientMessage({ type: "ping", id: 1 }, true)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
    expect(() => parseClientMessage({ type: "rpc.call", id: 1, name: "f", mode: "send" }, false)).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
  });

  it("gateway messages are validated too", () => {
    expect(parseGatewayMessage({ type: "rpc.result", id: 2, raw: true }, true)).toEqual({ type: "rpc.result", id: 2, raw: true });
    expect(() => parseGatewayMessage({ type: "rpc.result", id: 2, raw: true }, false)).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
    expect(() => parseGatewayMessage({ type: "welcome", id: 0 }, false)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
  });

  it("decode turns garbage into ProtocolError, never another exception", () => {
    expect(() => decode(new Uint8Array(0))).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
    expect(() => decode(Uint8Array.of(0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
  });

  it("errors from the wire come back typed, with their code", () => {
    expect(errorFromWire(ErrorCode.POOL_FULL, "full")).toBeInstanceOf(PoolFullError);
    expect(errorFromWire(ErrorCode.POOL_FULL, "full").status).toBe(503);
    const unknown = errorFromWire("SOMETHING_NEW", "later version");
    expect(unknown).toBeInstanceOf(RemoteError);
    expect(unknown.message).toContain("SOMETHING_NEW");
  });
});

describe("byte helpers", () => {
  it("ints are 8-byte big-endian signed and round-trip", () => {
    expect(Array.from(intToBytes(1))).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    for (const n of [0, 1, -1, 255, -256, 2 ** 40, -(2 ** 52), Number.MAX_SAFE_INTEGER]) {
      expect(bytesToInt(intToBytes(n))).toBe(n);
      expect(fromBytes(DataType.int, toBytes(DataType.int, n))).toBe(n);
    }
    expect(bytesToInt(Uint8Array.of(0xff))).toBe(-1);
    expect(bytesToInt(Uint8Array.of(0x01, 0x00))).toBe(256);
    expect(() => intToBytes(1.5)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => bytesToInt(new Uint8Array(9))).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it("strings, floats, bools, bytes and CBOR round-trip", () => {
    expect(fromBytes(DataType.string, strToBytes("grüße ✓"))).toBe("grüße ✓");
    expect(fromBytes(DataType.float, toBytes(DataType.float, Math.PI))).toBe(Math.PI);
    expect(fromBytes(DataType.bool, toBytes(DataType.bool, true))).toBe(true);
    const b = Uint8Array.of(1, 2);
    expect(fromBytes(DataType.bytes, toBytes(DataType.bytes, b))).toBe(b);
    expect(fromBytes(DataType.cbor, toBytes(DataType.cbor, { a: [1, "x", null] }))).toEqual({ a: [1, "x", null] });
    expect(() => fromBytes(DataType.string, Uint8Array.of(0xff))).toThrow();
  });

  it("registerClass refuses reserved and clashing tags", () => {
    class A {}
    class B {}
    expect(() => registerClass(A, 5)).toThrow(RangeError);
    registerClass(A, 41_000);
    registerClass(A, 41_000); // same class again is fine
    expect(() => registerClass(B, 41_000)).toThrow(/already registered/);
    expect(decode(encode(new A()))).toBeInstanceOf(A);
  });

  it("endpoints are normalised and bad ones refused", () => {
    expect(normalizeEndpoint("127.0.0.1:1857")).toBe("tcp://127.0.0.1:1857");
    expect(normalizeEndpoint("tcp://localhost:9")).toBe("tcp://localhost:9");
    expect(normalizeEndpoint(1857)).toBe("tcp://127.0.0.1:1857");
    for (const bad of ["", "host", "host:0", "host:70000", "udp://h:1", "tcp://h:1/x"]) {
      expect(() => normalizeEndpoint(bad)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
  });
});
