/**
 * A TCP relay that injects link faults between a client and a gateway, on
 * loopback: `reset()` drops both TCP connections of every relayed pair with an
 * RST (ZeroMQ then reconnects by itself), `stall(ms)` stops forwarding (bytes
 * are held, connections stay up), `block(ms)` resets and refuses new
 * connections for a while, `throttle(bytesPerSecond)` limits the rate, and
 * `delay(ms, jitterMs)` holds every chunk (order is kept, as on TCP).
 *
 * Used by the link-fault tests and by `npm run soak`.
 */
import net from "node:net";

/** Past this many bytes held in one direction, stop reading from the sender. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;

export interface FaultRelayOptions {
  readonly targetHost?: string;
  readonly targetPort: number;
  /** @default "127.0.0.1" */
  readonly host?: string;
}

export interface FaultRelayStats {
  connections: number;
  resets: number;
  bytes: number;
}

class Direction {
  readonly #from: net.Socket;
  readonly #to: net.Socket;
  readonly #relay: FaultRelay;
  #queue: Array<{ at: number; data: Buffer }> = [];
  #held = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastRelease = 0;
  #ended = false;
  #closed = false;

  constructor(relay: FaultRelay, from: net.Socket, to: net.Socket) {
    this.#relay = relay;
    this.#from = from;
    this.#to = to;
    from.on("data", (data: Buffer) => this.#push(data));
    from.on("end", () => {
      this.#ended = true;
      this.kick();
    });
  }

  #push(data: Buffer): void {
    const { delayMs, jitterMs } = this.#relay.shaping;
    const at = Math.max(this.#lastRelease, Date.now() + delayMs + (jitterMs > 0 ? Math.random() * jitterMs : 0));
    this.#lastRelease = at;
    this.#queue.push({ at, data });
    this.#held += data.length;
    if (this.#held > MAX_HELD_BYTES) this.#from.pause();
    this.kick();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#queue = [];
  }

  /** Forwards what is due now; schedules itself for the rest. */
  kick(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = Date.now();
    const stalledUntil = this.#relay.stalledUntil;
    if (stalledUntil > now) {
      this.#timer = setTimeout(() => this.kick(), stalledUntil - now);
      return;
    }
    const rate = this.#relay.shaping.bytesPerSecond;
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (head.at > now) {
        this.#timer = setTimeout(() => this.kick(), head.at - now);
        return;
      }
      let chunk = head.data;
      if (rate > 0) {
        // Token bucket of about 10 ms worth of bytes.
        const budget = this.#relay.takeTokens(chunk.length);
        if (budget === 0) {
          this.#timer = setTimeout(() => this.kick(), 5);
          return;
        }
        if (budget < chunk.length) {
          head.data = chunk.subarray(budget);
          chunk = chunk.subarray(0, budget);
        } else {
          this.#queue.shift();
        }
      } else {
        this.#queue.shift();
      }
      this.#held -= chunk.length;
      this.#relay.stats.bytes += chunk.length;
      this.#relay.onForward?.(this.#relay.stats.bytes);
      if (!this.#to.destroyed) this.#to.write(chunk);
    }
    if (this.#held <= MAX_HELD_BYTES / 2 && this.#from.isPaused()) this.#from.resume();
    if (this.#ended && !this.#to.destroyed) this.#to.end();
  }
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  directions: Direction[];
}

export class FaultRelay {
  readonly #options: Required<FaultRelayOptions>;
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  readonly stats: FaultRelayStats = { connections: 0, resets: 0, bytes: 0 };
  /** Called after each forwarded chunk with the bytes forwarded so far (both directions): a hook to inject faults at a point of a transfer. */
  onForward: ((bytes: number) => void) | undefined;
  /** Forwarding is stopped until this time (ms since epoch). */
  stalledUntil = 0;
  #blockedUntil = 0;
  readonly shaping = { delayMs: 0, jitterMs: 0, bytesPerSecond: 0 };
  #tokens = 0;
  #tokensAt = Date.now();
  #port = 0;

  constructor(options: FaultRelayOptions) {
    this.#options = { targetHost: "127.0.0.1", host: "127.0.0.1", ...options };
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(socket));
  }

  /** Listens on an ephemeral loopback port; resolves with it. */
  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(0, this.#options.host, () => {
        this.#server.off("error", reject);
        this.#port = (this.#server.address() as net.AddressInfo).port;
        resolve(this.#port);
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  get endpoint(): string {
    return `tcp://${this.#options.host}:${this.#port}`;
  }

  /** Relayed pairs open now. */
  get open(): number {
    return this.#pairs.size;
  }

  /** Drops every relayed connection, both sides, with a TCP RST. */
  reset(): void {
    this.stats.resets++;
    for (const pair of [...this.#pairs]) this.#drop(pair, true);
  }

  /** Stops forwarding for `ms` (connections stay open; bytes are held, then delivered in order). */
  stall(ms: number): void {
    this.stalledUntil = Math.max(this.stalledUntil, Date.now() + ms);
  }

  /** Ends a stall now. */
  unstall(): void {
    this.stalledUntil = 0;
    for (const pair of this.#pairs) for (const d of pair.directions) d.kick();
  }

  /** Resets every connection and refuses new ones for `ms` (a link that is down). */
  block(ms: number): void {
    this.#blockedUntil = Date.now() + ms;
    this.reset();
  }

  /** Accepts connections again (ends a `block`). */
  unblock(): void {
    this.#blockedUntil = 0;
  }

  /** Limits both directions together to `bytesPerSecond` (0: no limit). */
  throttle(bytesPerSecond: number): void {
    this.shaping.bytesPerSecond = bytesPerSecond;
  }

  /** Holds every chunk `ms` plus up to `jitterMs` more, keeping order. */
  delay(ms: number, jitterMs = 0): void {
    this.shaping.delayMs = ms;
    this.shaping.jitterMs = jitterMs;
  }

  /** @internal Token bucket for `throttle`: how many of `wanted` bytes may go now. */
  takeTokens(wanted: number): number {
    const rate = this.shaping.bytesPerSecond;
    const now = Date.now();
    this.#tokens = Math.min(rate / 100, this.#tokens + ((now - this.#tokensAt) * rate) / 1000);
    this.#tokensAt = now;
    const n = Math.max(0, Math.min(wanted, Math.floor(this.#tokens)));
    this.#tokens -= n;
    return n;
  }

  async close(): Promise<void> {
    for (const pair of [...this.#pairs]) this.#drop(pair, false);
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    if (Date.now() < this.#blockedUntil) {
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    client.setNoDelay(true);
    const upstream = net.connect({ host: this.#options.targetHost, port: this.#options.targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const pair: Pair = { client, upstream, directions: [] };
    pair.directions.push(new Direction(this, client, upstream), new Direction(this, upstream, client));
    this.#pairs.add(pair);
    const drop = (): void => this.#drop(pair, false);
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
  }

  #drop(pair: Pair, rst: boolean): void {
    if (!this.#pairs.delete(pair)) return;
    for (const d of pair.directions) d.close();
    for (const s of [pair.client, pair.upstream]) {
      if (s.destroyed) continue;
      if (rst && !s.connecting) s.resetAndDestroy();
      else s.destroy();
    }
  }
}
