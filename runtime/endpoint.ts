import { DEFAULT_HOST, DEFAULT_PORT, InvalidArgumentError } from "../protocol/index.js";

/** Accepts `tcp://host:port`, `host:port` or a bare port; returns `tcp://host:port`. */
export function normalizeEndpoint(endpoint: string | number): string {
  if (typeof endpoint === "number") return `tcp://${DEFAULT_HOST}:${checkPort(endpoint)}`;
  if (typeof endpoint !== "string" || endpoint.length === 0) {
    throw new InvalidArgumentError(`endpoint must be 'host:port' or 'tcp://host:port', got ${JSON.stringify(endpoint)}`);
  }
  const rest = endpoint.startsWith("tcp://") ? endpoint.slice(6) : endpoint;
  if (endpoint.includes("://") && !endpoint.startsWith("tcp://")) {
    throw new InvalidArgumentError(`only tcp:// endpoints are supported, got ${endpoint}`);
  }
  const m = /^(\[[^\]]+\]|[^:\s/]+):(\d{1,5})$/.exec(rest);
  if (!m) throw new InvalidArgumentError(`endpoint must be 'host:port' or 'tcp://host:port', got ${JSON.stringify(endpoint)}`);
  return `tcp://${m[1]}:${checkPort(Number(m[2]), endpoint)}`;
}

export function endpointOf(host: string, port: number): string {
  return normalizeEndpoint(`${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`);
}

function checkPort(port: number, shown: unknown = port): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`port must be an integer in 1..65535, got ${String(shown)}`);
  }
  return port;
}

export { DEFAULT_HOST, DEFAULT_PORT };
