/**
 * ZeroMQ's authentication (ZAP) for CURVE: one handler per process, bound at
 * the well-known inproc endpoint of the default context, serving every
 * gateway of the process by its ZAP domain. A client key not in the domain's
 * authorized list is refused and counted.
 */
import { Router } from "zeromq";

const ZAP_ENDPOINT = "inproc://zeromq.zap.01";
const Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/** Z85 (ZeroMQ's key text form, 40 characters for a 32-byte key) to bytes. */
export function z85Decode(text: string): Buffer {
  if (text.length % 5 !== 0) throw new RangeError(`not a Z85 string (length ${text.length})`);
  const out = Buffer.alloc((text.length / 5) * 4);
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = Z85.indexOf(text[i]!);
    if (digit < 0) throw new RangeError(`not a Z85 character: ${JSON.stringify(text[i])}`);
    value = value * 85 + digit;
    if (i % 5 === 4) {
      out.writeUInt32BE(value >>> 0, ((i - 4) / 5) * 4);
      value = 0;
    }
  }
  return out;
}

export interface ZapCounters {
  authorized: number;
  refused: number;
}

interface Domain {
  keys: Set<string>;
  counters: ZapCounters;
}

const domains = new Map<string, Domain>();

/** The endpoint of a handler closed a moment ago may not be free yet: retry for up to a second. */
async function bindRetrying(zap: Router): Promise<void> {
  const deadline = Date.now() + 1_000;
  for (;;) {
    try {
      await zap.bind(ZAP_ENDPOINT);
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== "EADDRINUSE" || Date.now() >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
let socket: Router | undefined;
let binding: Promise<void> | undefined;
let closing: Promise<void> | undefined;

async function serve(zap: Router): Promise<void> {
  while (!zap.closed) {
    let request: Buffer[];
    try {
      request = await zap.receive();
    } catch {
      return;
    }
    // [routing id, empty, version, request id, domain, address, identity, mechanism, credentials...]
    const [id, empty, version, requestId, domainName, , , mechanism, key] = request;
    const domain = domains.get(domainName?.toString() ?? "");
    const ok = domain !== undefined && mechanism?.toString() === "CURVE" && key?.length === 32 && domain.keys.has(key.toString("hex"));
    if (domain) {
      if (ok) domain.counters.authorized++;
      else domain.counters.refused++;
    }
    try {
      await zap.send([id!, empty!, version!, requestId!, ok ? "200" : "400", ok ? "OK" : "client key not authorized", "", ""]);
    } catch {
      // The requesting connection is gone; nothing to answer.
    }
  }
}

/** Registers a gateway's authorized client keys (Z85) under a fresh ZAP domain; returns the domain. */
export async function registerZapDomain(name: string, authorizedKeys: readonly string[]): Promise<ZapCounters> {
  const counters: ZapCounters = { authorized: 0, refused: 0 };
  domains.set(name, { keys: new Set(authorizedKeys.map((k) => z85Decode(k).toString("hex"))), counters });
  // The endpoint of a handler that is still closing is not free yet.
  if (closing) await closing;
  if (!socket) {
    const zap = new Router({ linger: 0 });
    socket = zap;
    binding = bindRetrying(zap).then(() => void serve(zap));
  }
  await binding;
  return counters;
}

/** Removes a domain; the last one out closes the handler (so the process can exit) and waits until its endpoint is free. */
export async function unregisterZapDomain(name: string): Promise<void> {
  domains.delete(name);
  if (domains.size === 0 && socket) {
    const zap = socket;
    const bound = binding;
    socket = undefined;
    binding = undefined;
    closing = (async () => {
      await bound?.catch(() => undefined);
      zap.close();
    })();
    await closing;
    closing = undefined;
  }
}
