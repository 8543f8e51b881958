/**
 * CBOR for envelopes and values (cbor-x). One encoder instance for the whole
 * process so that `registerClass` extensions apply everywhere.
 *
 * The cbor-x options, and why:
 * - `tagUint8Array: false`: a Uint8Array is a plain CBOR byte string, so a
 *   Python or Go peer sees bytes; it decodes as a Buffer (a Uint8Array).
 * - `useRecords: false`, `mapsAsObjects: true`: plain CBOR maps, no cbor-x
 *   record extension a non-JavaScript peer could not read.
 * - `encodeUndefinedAsNil: false`: undefined stays distinct from null, so
 *   "a null buffer ends a stream" is exact.
 * - 64-bit integers: cbor-x decodes every integer written in 8 bytes as a
 *   BigInt; `decode` turns the ones a number holds exactly (|n| <= 2^53) into
 *   numbers (`normalizeIntegers`), whatever width the sender picked (Python's
 *   cbor2 writes 2**40 in 8 bytes). Larger ones stay BigInt. (cbor-x's
 *   `int64AsNumber` would round those silently, so it is not used.)
 * - `-0` and strings with lone surrogates cannot round-trip (cbor-x writes
 *   -0 as 0; UTF-8 cannot hold a lone surrogate): `wireValueProblem` finds
 *   them so callers refuse them before sending (protocol/values.ts).
 */
import { Encoder, addExtension, setSizeLimits } from "cbor-x";
import { ProtocolError } from "./errors.js";
import { describeThrown } from "./thrown.js";
import { LIMITS } from "./limits.js";
import { normalizeIntegers } from "./values.js";

setSizeLimits({
  maxArraySize: LIMITS.maxCollectionLength,
  maxMapSize: LIMITS.maxCollectionLength,
  maxObjectSize: LIMITS.maxCollectionLength,
});

const encoder = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  // Keep undefined distinct from null so "null buffer ends a stream" is exact.
  encodeUndefinedAsNil: false,
});

/** Encodes any CBOR-able value (envelopes and subroutine values alike). */
export function encode(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes bytes from the wire; anything cbor-x refuses becomes a ProtocolError. */
export function decode(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new ProtocolError("empty frame");
  let value: unknown;
  try {
    value = encoder.decode(bytes);
  } catch (err) {
    throw new ProtocolError(`frame is not valid CBOR: ${describeThrown(err).message}`, { cause: err });
  }
  // 0x1b / 0x3b start an 8-byte unsigned / negative integer: only then can a BigInt be in there.
  return bytes.indexOf(0x1b) >= 0 || bytes.indexOf(0x3b) >= 0 ? normalizeIntegers(value) : value;
}

/** Tags at or above this are free for applications (below are IANA-assigned or cbor-x's own). */
export const MIN_CLASS_TAG = 40_000;

export interface ClassCodec<T> {
  /** What goes on the wire for an instance; default: its own enumerable fields. */
  encode?: (instance: T) => unknown;
  /** Rebuilds an instance from what `encode` produced; default: fields copied onto a bare instance. */
  decode?: (data: unknown) => T;
}

/** Each tag and the class registered under it (any constructor: compared by identity only). */
const registeredTags = new Map<number, abstract new (...args: never[]) => unknown>();

/**
 * Lets instances of `Class` cross the wire as themselves: both sides register
 * the same class under the same tag. Replaces pynetwork's Handshakes file.
 */
export function registerClass<T extends object>(Class: abstract new (...args: never[]) => T, tag: number, codec: ClassCodec<T> = {}): void {
  if (!Number.isInteger(tag) || tag < MIN_CLASS_TAG || tag > 0xffff_ffff) {
    throw new RangeError(`registerClass: tag must be an integer >= ${MIN_CLASS_TAG}, got ${tag}`);
  }
  const existing = registeredTags.get(tag);
  if (existing !== undefined && existing !== Class) {
    throw new RangeError(`registerClass: tag ${tag} is already registered for ${existing.name}`);
  }
  registeredTags.set(tag, Class);
  const toWire = codec.encode ?? ((instance: T) => ({ ...instance }));
  const fromWire = codec.decode ?? ((data: unknown) => Object.assign(Object.create(Class.prototype as object) as T, data as object));
  addExtension({
    Class: Class as unknown as new (...args: unknown[]) => T,
    tag,
    encode(instance: T, encodeValue: (value: unknown) => Uint8Array) {
      return encodeValue(toWire(instance));
    },
    decode(data: unknown) {
      return fromWire(data);
    },
  });
}
