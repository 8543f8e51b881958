/**
 * The options modules (runtime/gateway-options.ts, runtime/controller-options.ts):
 * defaults come from the named constants, and a bad value is refused with
 * SWARMNET_INVALID_ARGUMENT and a message naming the owner and the option,
 * before any socket or actor exists. No network: every constructor here throws.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import {
  AdminConnection,
  Controller,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DOWNLOAD_DIR,
  DEFAULT_FILE_ROOTS,
  DEFAULT_HOST,
  DEFAULT_MAX_POOL_SIZE,
  DEFAULT_PORT,
  DEFAULT_TIMEOUT_MS,
  ErrorCode,
  Gateway,
  startWebInspector,
} from "../runtime/index.js";
import { resolveControllerOptions } from "../runtime/controller-options.js";
import { resolveGatewayOptions } from "../runtime/gateway-options.js";

function refused(make: () => unknown, message: RegExp): void {
  expect(make).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(message) }));
}

describe("options", () => {
  it("defaults are the named constants: Downloads, the cwd as file root, 127.0.0.1:1857, a pool of 5", () => {
    const gateway = resolveGatewayOptions();
    expect(gateway).toMatchObject({
      host: DEFAULT_HOST,
      port: DEFAULT_PORT,
      maxPoolSize: DEFAULT_MAX_POOL_SIZE,
      downloadDir: DEFAULT_DOWNLOAD_DIR,
    });
    expect(gateway.fileRoots).toEqual(DEFAULT_FILE_ROOTS);
    expect([DEFAULT_DOWNLOAD_DIR, ...DEFAULT_FILE_ROOTS]).toEqual(["Downloads", "."]);
    expect(resolveGatewayOptions(1900)).toMatchObject({
      port: 1900,
      testHooks: undefined,
      metrics: undefined,
      webInspectorPort: undefined,
    });
    expect(resolveGatewayOptions({ metrics: true, webInspector: { port: 8080 } })).toMatchObject({
      metrics: { port: 0 },
      webInspectorPort: 8080,
    });
    expect(resolveControllerOptions()).toMatchObject({
      endpoints: [`tcp://${DEFAULT_HOST}:${DEFAULT_PORT}`],
      downloadDir: DEFAULT_DOWNLOAD_DIR,
      timeoutMs: DEFAULT_TIMEOUT_MS,
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    });
    expect(resolveControllerOptions({ host: "10.0.0.2:1900" }).endpoints).toEqual(["tcp://10.0.0.2:1900"]);
  });

  it("a bad value is refused naming the owner, the option, what was expected and what came", () => {
    refused(() => new Gateway({ port: 70_000 }), /^Expected Gateway option `port` to be an integer from 0 to 65535, got 70000 \(number\)$/);
    refused(() => new Gateway({ maxPoolSize: 0 }), /Expected Gateway option `maxPoolSize` to be an integer >= 1, got 0/);
    refused(() => new Gateway({ livenessMs: 10 }), /Expected Gateway option `livenessMs` to be an integer >= 50, got 10/);
    refused(() => new Gateway({ metrics: { port: -1 } }), /Expected Gateway option `metrics.port` to be an integer from 0 to 65535/);
    refused(() => new Gateway({ webInspector: { port: 1.5 } }), /Expected Gateway option `webInspector.port`/);
    refused(() => new Gateway({ host: "" }), /Expected Gateway option `host` to be a non-empty string, got ""/);
    refused(() => new Gateway({ curve: { publicKey: "x", secretKey: "y", authorizedKeys: [] } }), /Expected Gateway option `curve`/);
    refused(() => new Controller({ timeoutMs: 0 }), /Expected Controller option `timeoutMs` to be an integer >= 1, got 0/);
    refused(
      () => new Controller({ connectTimeoutMs: "5" as never }),
      /Expected Controller option `connectTimeoutMs` to be an integer >= 1, got "5"/,
    );
    refused(() => new Controller({ gateways: [] }), /Expected Controller option `gateways` to be a non-empty array/);
    refused(() => new Controller({ host: 5 as never }), /Expected Controller option `host` to be a non-empty string, got 5 \(number\)/);
    refused(() => new AdminConnection("127.0.0.1:1857", { timeoutMs: -1 }), /Expected AdminConnection option `timeoutMs`/);
    // Names are checked first, with the likely one (runtime/options.ts).
    refused(() => new Gateway({ max_pool_size: 3 } as never), /Gateway has no option 'max_pool_size'.*did you mean 'maxPoolSize'\?/);
  });

  it("the per-call options of a controller and the web inspector's are refused the same way, before anything connects", async () => {
    const controller = new Controller({ port: 1 });
    onTestFinished(() => controller.close());
    const invalid = (message: RegExp) => ({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(message) });
    await expect(controller.getClient({ waitMs: -1 })).rejects.toMatchObject(
      invalid(/^Expected getClient option `waitMs` to be an integer >= 0, got -1 \(number\)$/),
    );
    await expect(controller.listSubroutines({ timeoutMs: 0 })).rejects.toMatchObject(
      invalid(/^Expected listSubroutines option `timeoutMs` to be an integer >= 1, got 0/),
    );
    await expect(startWebInspector({ port: 65_536 } as never)).rejects.toMatchObject(
      invalid(/^Expected startWebInspector option `port` to be an integer from 0 to 65535/),
    );
    await expect(startWebInspector({ intervalMs: 5 } as never)).rejects.toMatchObject(
      invalid(/^Expected startWebInspector option `intervalMs` to be an integer >= 10, got 5/),
    );
  });
});
