import { curveKeyPair } from "zeromq";

export interface KeyPair {
  /** Z85 text, 40 characters: give it to the other side. */
  readonly publicKey: string;
  /** Z85 text, 40 characters: keep it secret. */
  readonly secretKey: string;
}

/** A fresh CURVE key pair for a gateway or a client (`swarmnet keygen` prints one). */
export function generateKeyPair(): KeyPair {
  const { publicKey, secretKey } = curveKeyPair();
  return { publicKey, secretKey };
}
