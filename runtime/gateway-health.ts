/**
 * A controller's view of which gateways are up: a gateway that failed a
 * connect (no answer, connection error, stopping) or whose connection dropped
 * (socket monitor) is "down" for a short back-off that doubles while it keeps
 * failing (1 s up to 5 s); a welcome makes it live again. New clients and
 * swarms are spread round-robin over the live gateways; down ones are tried
 * only after every live one (so a controller whose only gateway blipped still
 * reconnects), instead of costing each getClient() a connect timeout.
 */

/** First back-off after a gateway fails, in ms; it doubles per failure. */
export const GATEWAY_BACKOFF_MIN_MS = 1_000;
/** Longest back-off, in ms. */
export const GATEWAY_BACKOFF_MAX_MS = 5_000;

interface Down {
  until: number;
  backoffMs: number;
}

export class GatewayHealth {
  readonly #down = new Map<string, Down>();
  #rotation = 0;

  /** True while `endpoint` is in its back-off. */
  isDown(endpoint: string, now = Date.now()): boolean {
    const down = this.#down.get(endpoint);
    return down !== undefined && down.until > now;
  }

  /** `endpoint` failed: skip it for a back-off that doubles while it keeps failing. */
  markDown(endpoint: string): void {
    const previous = this.#down.get(endpoint);
    const backoffMs = previous ? Math.min(GATEWAY_BACKOFF_MAX_MS, previous.backoffMs * 2) : GATEWAY_BACKOFF_MIN_MS;
    this.#down.set(endpoint, { until: Date.now() + backoffMs, backoffMs });
  }

  /** `endpoint` answered: it is live again. */
  markUp(endpoint: string): void {
    this.#down.delete(endpoint);
  }

  /**
   * The order to try `endpoints` in for the next client: the live ones rotated
   * round-robin (each call starts one further), then the ones in back-off,
   * soonest back first.
   */
  order(endpoints: readonly string[]): string[] {
    const now = Date.now();
    const live = endpoints.filter((e) => !this.isDown(e, now));
    const down = endpoints.filter((e) => this.isDown(e, now)).sort((a, b) => this.#down.get(a)!.until - this.#down.get(b)!.until);
    const start = live.length === 0 ? 0 : this.#rotation++ % live.length;
    return [...live.slice(start), ...live.slice(0, start), ...down];
  }
}
