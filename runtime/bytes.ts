/**
 * Byte helpers, pynetwork's `to_bytes`/`from_bytes` family. Integers are
 * 8-byte big-endian two's complement; floats 8-byte big-endian IEEE 754;
 * strings UTF-8; `cbor` is any value through swarmnet's CBOR codec.
 */
import { decode, encode, InvalidArgumentError } from "../protocol/index.js";

export const DataType = {
  int: "int",
  float: "float",
  string: "string",
  bool: "bool",
  bytes: "bytes",
  cbor: "cbor",
} as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

export interface DataTypeValue {
  int: number | bigint;
  float: number;
  string: string;
  bool: boolean;
  bytes: Uint8Array;
  cbor: unknown;
}

/** The refusal of a type that is not a DataType, listing the ones that are. */
function unknownType(fn: string, type: unknown): InvalidArgumentError {
  const hint = type === undefined ? " (a DataType member that does not exist, e.g. DataType.double? 8-byte floats are DataType.float)" : "";
  return new InvalidArgumentError(
    `${fn}: unknown data type ${JSON.stringify(type) ?? String(type)}${hint}; the types are ${Object.keys(DataType)
      .map((t) => `DataType.${t}`)
      .join(", ")}`,
  );
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function strToBytes(value: string): Uint8Array {
  if (typeof value !== "string") throw new InvalidArgumentError(`strToBytes: expected a string, got ${typeof value}`);
  return utf8.encode(value);
}

export function bytesToStr(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** 8 bytes, big-endian, signed: the whole int64 range (pass a bigint beyond 2^53). */
export function intToBytes(value: number | bigint): Uint8Array {
  const big = typeof value === "bigint" ? value : Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (big === undefined || big < -(2n ** 63n) || big >= 2n ** 63n) {
    throw new InvalidArgumentError(`intToBytes: expected a safe integer or an int64 bigint, got ${String(value)}`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, big);
  return out;
}

/** Reads 1 to 8 big-endian bytes as a signed integer (a number; RangeError past 2^53). */
export function bytesToInt(bytes: Uint8Array): number {
  if (!(bytes instanceof Uint8Array) || bytes.length < 1 || bytes.length > 8) {
    throw new InvalidArgumentError(`bytesToInt: expected 1 to 8 bytes, got ${bytes?.length ?? typeof bytes}`);
  }
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  const bits = BigInt(bytes.length * 8);
  if (value >= 1n << (bits - 1n)) value -= 1n << bits;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bytesToInt: ${value} is outside the safe integer range`);
  return n;
}

export function toBytes<T extends DataType>(type: T, value: DataTypeValue[T]): Uint8Array {
  switch (type) {
    case DataType.int:
      return intToBytes(value as number | bigint);
    case DataType.float: {
      if (typeof value !== "number") throw new InvalidArgumentError(`toBytes(float): expected a number, got ${typeof value}`);
      const out = new Uint8Array(8);
      new DataView(out.buffer).setFloat64(0, value);
      return out;
    }
    case DataType.string:
      return strToBytes(value as string);
    case DataType.bool:
      if (typeof value !== "boolean") throw new InvalidArgumentError(`toBytes(bool): expected a boolean, got ${typeof value}`);
      return Uint8Array.of(value ? 1 : 0);
    case DataType.bytes:
      if (!(value instanceof Uint8Array)) throw new InvalidArgumentError("toBytes(bytes): expected a Uint8Array");
      return value;
    case DataType.cbor:
      return encode(value);
    default:
      throw unknownType("toBytes", type);
  }
}

export function fromBytes<T extends DataType>(type: T, bytes: Uint8Array): DataTypeValue[T] {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError("fromBytes: expected a Uint8Array");
  switch (type) {
    case DataType.int:
      return bytesToInt(bytes) as DataTypeValue[T];
    case DataType.float:
      if (bytes.length !== 8) throw new InvalidArgumentError(`fromBytes(float): expected 8 bytes, got ${bytes.length}`);
      return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0) as DataTypeValue[T];
    case DataType.string:
      return bytesToStr(bytes) as DataTypeValue[T];
    case DataType.bool:
      if (bytes.length !== 1) throw new InvalidArgumentError(`fromBytes(bool): expected 1 byte, got ${bytes.length}`);
      return (bytes[0] !== 0) as DataTypeValue[T];
    case DataType.bytes:
      return bytes as DataTypeValue[T];
    case DataType.cbor:
      return decode(bytes) as DataTypeValue[T];
    default:
      throw unknownType("fromBytes", type);
  }
}
