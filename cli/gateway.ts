import { readFileSync } from "node:fs";
import { localFolder } from "./common.js";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import {
  DEFAULT_DOWNLOAD_DIR,
  DEFAULT_FILE_ROOTS,
  DEFAULT_HOST,
  DEFAULT_MAX_POOL_SIZE,
  DEFAULT_PORT,
  Gateway,
  type ServerCurve,
  type Subroutine,
} from "../runtime/index.js";
import { EXIT_CODES_HELP, ExitCode, UsageError, err, intFlag, keysIn, out, parse, readKey, type Command } from "./common.js";

const help = `Usage: swarmnet gateway [options]

Serves the subroutines exported by a module, and the files of one or more
folders, until Ctrl-C (SIGINT) or SIGTERM stops it gracefully.

Options:
      --host HOST              address to bind (default ${DEFAULT_HOST})
  -p, --port PORT              TCP port; 0 picks a free one (default ${DEFAULT_PORT})
      --pool N                 live handlers at most (default ${DEFAULT_MAX_POOL_SIZE})
  -s, --subroutines MODULE     a JS/TS module: every exported function becomes a
                               subroutine under its export name (generators stream);
                               repeatable
  -t, --threads N              run the --subroutines modules on a pool of N worker
                               threads each, off the gateway's event loop (for
                               CPU-heavy work; default: on the event loop)
      --root DIR               a folder clients may download from; repeatable (default ${DEFAULT_FILE_ROOTS.join(" ")})
      --download-dir DIR       where uploads land (default ./${DEFAULT_DOWNLOAD_DIR})
      --admin                  answer admin requests (swarmnet inspect)
      --remote-stack           send a throwing subroutine's stack to the client
                               (every throw is logged here on stderr either way)
      --metrics PORT           serve Prometheus metrics at http://127.0.0.1:PORT/metrics
                               (0 picks a free port; the URL is printed)
      --web PORT               serve the web inspector at http://127.0.0.1:PORT/
                               (0 picks a free port; the URL is printed, nothing is opened)
      --curve-secret KEY       CURVE: the gateway's secret key (Z85 text or a file)
      --curve-public KEY       CURVE: the gateway's public key (Z85 text or a file)
      --authorized-keys FILE   CURVE: client public keys let in, one per line
  -h, --help                   this help

Prints "listening on tcp://HOST:PORT" when ready.

Example:
  swarmnet gateway --port 1857 --root ./data --subroutines ./subs.js --pool 8 --admin

${EXIT_CODES_HELP}`;

const options = {
  host: { type: "string" },
  port: { type: "string", short: "p" },
  pool: { type: "string" },
  subroutines: { type: "string", short: "s", multiple: true },
  threads: { type: "string", short: "t" },
  root: { type: "string", multiple: true },
  "download-dir": { type: "string" },
  admin: { type: "boolean" },
  "remote-stack": { type: "boolean" },
  metrics: { type: "string" },
  web: { type: "string" },
  "curve-secret": { type: "string" },
  "curve-public": { type: "string" },
  "authorized-keys": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Every function a module exports, by export name (and the function members of a default-exported object). */
export async function loadSubroutines(path: string): Promise<Map<string, Subroutine>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`--subroutines ${path}: cannot load: ${(e as Error).message}`);
  }
  const found = new Map<string, Subroutine>();
  const fallback = module["default"];
  if (fallback !== null && typeof fallback === "object") {
    for (const [name, value] of Object.entries(fallback)) if (typeof value === "function") found.set(name, value as Subroutine);
  }
  for (const [name, value] of Object.entries(module)) {
    if (name !== "default" && typeof value === "function") found.set(name, value as Subroutine);
  }
  if (found.size === 0) throw new UsageError(`--subroutines ${path}: the module exports no functions`);
  return found;
}

function serverCurve(values: { "curve-secret"?: string; "curve-public"?: string; "authorized-keys"?: string }): ServerCurve | undefined {
  const given = [values["curve-secret"], values["curve-public"], values["authorized-keys"]].filter((v) => v !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new UsageError("CURVE needs all three of --curve-secret, --curve-public and --authorized-keys");
  let text: string;
  try {
    text = readFileSync(values["authorized-keys"]!, "utf8");
  } catch {
    throw new UsageError(`--authorized-keys: cannot read ${values["authorized-keys"]}`);
  }
  return {
    secretKey: readKey("curve-secret", values["curve-secret"]!),
    publicKey: readKey("curve-public", values["curve-public"]!),
    authorizedKeys: keysIn(text),
  };
}

export const gatewayCommand: Command = {
  name: "gateway",
  summary: "serve subroutines and files",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, options);
    if (values.help) return (out(help), ExitCode.OK);
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const threads = values.threads === undefined ? undefined : intFlag("threads", values.threads, 1, 1, 256);
    if (threads !== undefined && (values.subroutines ?? []).length === 0) throw new UsageError("--threads needs --subroutines MODULE");
    const subroutines = new Map<string, Subroutine>();
    if (threads === undefined) {
      for (const path of values.subroutines ?? []) for (const [name, fn] of await loadSubroutines(path)) subroutines.set(name, fn);
    }
    const curve = serverCurve(values);
    const gateway = new Gateway({
      host: values.host ?? DEFAULT_HOST,
      port: intFlag("port", values.port, DEFAULT_PORT, 0, 65535),
      maxPoolSize: intFlag("pool", values.pool, DEFAULT_MAX_POOL_SIZE),
      fileRoots: (values.root ?? DEFAULT_FILE_ROOTS).map((root) => localFolder("--root", root, true)),
      downloadDir: values["download-dir"] ?? DEFAULT_DOWNLOAD_DIR,
      admin: values.admin === true,
      remoteStack: values["remote-stack"] === true,
      ...(curve ? { curve } : {}),
      ...(values.metrics !== undefined ? { metrics: { port: intFlag("metrics", values.metrics, 0, 0, 65535) } } : {}),
      ...(values.web !== undefined ? { webInspector: { port: intFlag("web", values.web, 0, 0, 65535) } } : {}),
    });
    for (const [name, fn] of subroutines) gateway.addSubroutine(name, fn);
    const names = [...subroutines.keys()];
    if (threads !== undefined) {
      for (const path of values.subroutines ?? []) {
        try {
          names.push(...(await gateway.addSubroutines(resolve(path), { threads })));
        } catch (e) {
          await gateway.stop();
          throw new UsageError(`--subroutines ${path}: ${(e as Error).message}`);
        }
      }
    }

    let signals = 0;
    const stop = (signal: NodeJS.Signals): void => {
      if (++signals > 1) process.exit(ExitCode.INTERRUPTED); // a second Ctrl-C does not wait
      err(`${signal}: stopping (in-flight calls finish, clients are told)`);
      void gateway.stop();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    try {
      await gateway.start();
      out(
        `listening on ${gateway.endpoint} (pool ${gateway.options.maxPoolSize}, ` +
          `${names.length} subroutine${names.length === 1 ? "" : "s"}${names.length ? `: ${names.join(", ")}` : ""}` +
          `${threads === undefined ? "" : ` on ${threads} thread${threads === 1 ? "" : "s"}`}; ` +
          `files from ${gateway.options.fileRoots.join(", ")}${values.admin ? "; admin on" : ""}${curve ? "; CURVE on" : ""})`,
      );
      if (gateway.metricsUrl !== undefined) out(`metrics on ${gateway.metricsUrl}`);
      if (gateway.webInspectorUrl !== undefined) out(`web inspector on ${gateway.webInspectorUrl}`);
      await gateway.closed;
      out("gateway stopped");
      return ExitCode.OK;
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      await gateway.stop();
    }
  },
};
