/**
 * The names each entry point exports, pinned: adding, dropping or moving an
 * export between `swarmnet`, `swarmnet/actors` and `swarmnet/internal` fails
 * here until the list (and the README, where it names them) says so. Values are
 * read from the loaded module; type-only names from the entry's source, which
 * lists every export by name (no `export *`, see STYLE.md).
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The value and type-only names an entry file re-exports, each sorted. */
async function exportsOf(file: string): Promise<{ values: string[]; types: string[]; starExports: number }> {
  const source = ts.createSourceFile(file, await readFile(ROOT + file, "utf8"), ts.ScriptTarget.ES2022);
  const values: string[] = [];
  const types: string[] = [];
  let starExports = 0;
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement)) continue;
    if (statement.exportClause === undefined || !ts.isNamedExports(statement.exportClause)) {
      starExports++;
      continue;
    }
    for (const element of statement.exportClause.elements)
      (statement.isTypeOnly || element.isTypeOnly ? types : values).push(element.name.text);
  }
  return { values: values.sort(), types: types.sort(), starExports };
}

const ENTRIES = {
  "runtime/index.ts": {
    values: [
      "AbortedError",
      "AdminConnection",
      "AdminDisabledError",
      "AllocationError",
      "BusyError",
      "Client",
      "ClosedError",
      "ConnectionError",
      "ConnectionRefusedError",
      "Controller",
      "DEFAULT_ADMIN_TIMEOUT_MS",
      "DEFAULT_CONNECT_TIMEOUT_MS",
      "DEFAULT_DOWNLOAD_DIR",
      "DEFAULT_FILE_CHUNK_BYTES",
      "DEFAULT_FILE_ROOTS",
      "DEFAULT_FILE_SPLIT_BYTES",
      "DEFAULT_FILE_WINDOW_BYTES",
      "DEFAULT_FILE_WINDOW_FILES",
      "DEFAULT_HOST",
      "DEFAULT_INSPECTOR_INTERVAL_MS",
      "DEFAULT_LIVENESS_MS",
      "DEFAULT_MAX_MESSAGE_SIZE_BYTES",
      "DEFAULT_MAX_POOL_SIZE",
      "DEFAULT_MAX_RESTARTS",
      "DEFAULT_PORT",
      "DEFAULT_REGEX_TIMEOUT_MS",
      "DEFAULT_RESTART_WINDOW_MS",
      "DEFAULT_STOP_GRACE_MS",
      "DEFAULT_STREAM_WINDOW",
      "DEFAULT_STREAM_WINDOW_BYTES",
      "DEFAULT_TIMEOUT_MS",
      "DataType",
      "ErrorCode",
      "FileAccessError",
      "FileBusyError",
      "FileExistsError",
      "FileIntegrityError",
      "FileNotFoundError",
      "FilesNotDeliveredError",
      "Gateway",
      "HandlerCrashedError",
      "HandshakeError",
      "InvalidArgumentError",
      "MIN_CLASS_TAG",
      "MessageTooLargeError",
      "NotAGeneratorError",
      "PathNotAllowedError",
      "PoolFullError",
      "ProtocolError",
      "RemoteError",
      "ResumeRefusedError",
      "SessionEndedError",
      "SourceChangedError",
      "Status",
      "SubroutineNotFoundError",
      "Swarm",
      "SwarmnetError",
      "TimeoutError",
      "VersionMismatchError",
      "bytesToInt",
      "bytesToStr",
      "describeMachine",
      "fromBytes",
      "generateKeyPair",
      "inspectGateway",
      "intToBytes",
      "registerClass",
      "reorderByIdent",
      "startWebInspector",
      "strToBytes",
      "toBytes",
    ],
    types: [
      "AddSubroutinesOptions",
      "AdminOptions",
      "CallOptions",
      "ClassCodec",
      "ClientCurve",
      "ControllerOptions",
      "CurrentRequest",
      "DataTypeValue",
      "EndOfStreamCallback",
      "FileProgress",
      "GatewayInspection",
      "GatewayMetrics",
      "GatewayOptions",
      "GatewayWatch",
      "GetClientOptions",
      "GetFilesOptions",
      "GetSwarmOptions",
      "HandlerInspection",
      "IfExists",
      "InspectCallback",
      "InspectorActor",
      "JobProgress",
      "KeyPair",
      "Kwargs",
      "ListSubroutinesOptions",
      "MachineGraph",
      "MetricsOptions",
      "NotDelivered",
      "RefusedReplies",
      "SendFilesOptions",
      "ServerCurve",
      "ServerTransportStats",
      "SessionEndReason",
      "StateGraph",
      "StreamCallback",
      "StreamItem",
      "StreamOptions",
      "StreamProgress",
      "Subroutine",
      "SubroutineFailure",
      "SubroutineInfo",
      "ThreadPoolInspection",
      "ThreadWorkerInspection",
      "TransferProgress",
      "TransferReport",
      "TransitionGraph",
      "TransitionRecord",
      "WebInspector",
      "WebInspectorOptions",
    ],
  },
  "runtime/actors.ts": {
    values: [
      "DEFAULT_CLIENT_CLOSE_TIMEOUT_MS",
      "DeliveryLink",
      "SubroutineRegistry",
      "clientMachine",
      "controllerMachine",
      "gatewayMachine",
      "handlerMachine",
      "supervisorMachine",
      "swarmClientMachine",
    ],
    types: [
      "CallKind",
      "ClientActorRef",
      "ClientContext",
      "ClientEvent",
      "ClientMachineInput",
      "ClientSnapshot",
      "ControllerActorRef",
      "ControllerContext",
      "ControllerEvent",
      "ControllerMachineInput",
      "CurrentRequest",
      "DeliveryStats",
      "GatewayActorRef",
      "GatewayContext",
      "GatewayEvent",
      "GatewayMachineInput",
      "GatewaySnapshot",
      "HandlerActorRef",
      "HandlerContext",
      "HandlerEvent",
      "HandlerHooks",
      "HandlerInput",
      "HandlerOutput",
      "HandlerSnapshot",
      "LinkStats",
      "PendingCall",
      "RequestId",
      "RequestKind",
      "SupervisorActorRef",
      "SupervisorContext",
      "SupervisorEvent",
      "SupervisorInput",
      "SupervisorSnapshot",
      "SwarmClientActorRef",
      "SwarmClientCommand",
      "SwarmClientContext",
      "SwarmClientEmitted",
      "SwarmClientEmittedType",
      "SwarmClientEvent",
      "SwarmClientInput",
      "SwarmClientOptions",
      "SwarmClientOutput",
      "SwarmClientSnapshot",
    ],
  },
  "runtime/internal.ts": {
    values: [
      "MemoryHub",
      "PROTOCOL_VERSION",
      "checkRelativePath",
      "crashHandlerForTest",
      "decode",
      "describeThrown",
      "encode",
      "kindOfEntry",
      "normalizeEndpoint",
      "normalizeRequestPath",
    ],
    types: [
      "CallMode",
      "ClientMessage",
      "ClientTransport",
      "Frames",
      "GatewayMessage",
      "HandlerHooks",
      "InternalGatewayOptions",
      "Message",
      "MessageOf",
      "MessageType",
      "Peer",
      "ServerTransport",
      "ThrownDescription",
      "TransportFactory",
    ],
  },
} as const;

const LOADERS: Record<keyof typeof ENTRIES, () => Promise<object>> = {
  "runtime/index.ts": () => import("../runtime/index.js"),
  "runtime/actors.ts": () => import("../runtime/actors.js"),
  "runtime/internal.ts": () => import("../runtime/internal.js"),
};

describe("entry points", () => {
  it.each(Object.keys(ENTRIES) as (keyof typeof ENTRIES)[])("%s exports exactly its pinned names, each by name", async (file) => {
    const pinned = ENTRIES[file];
    const declared = await exportsOf(file);
    expect(declared.starExports).toBe(0);
    expect(declared.values).toEqual([...pinned.values].sort());
    expect(declared.types).toEqual([...pinned.types].sort());
    // What the built module really carries: the declared values and nothing else.
    const loaded = (await LOADERS[file]()) as Record<string, unknown>;
    expect(Object.keys(loaded).sort()).toEqual([...pinned.values].sort());
  });

  it("the user's entry carries no test hook, transport or wire internal, and swarmnet/internal repeats nothing of it", () => {
    const main = new Set<string>([...ENTRIES["runtime/index.ts"].values, ...ENTRIES["runtime/index.ts"].types]);
    for (const name of [...ENTRIES["runtime/internal.ts"].values, ...ENTRIES["runtime/internal.ts"].types])
      expect(main.has(name), name).toBe(false);
    for (const name of main) expect(name).not.toMatch(/ForTest$|^MemoryHub$|^Frames$|^Peer$|Transport$|Message$/);
  });

  it("package.json maps each entry to its built file", async () => {
    const pkg = JSON.parse(await readFile(ROOT + "package.json", "utf8")) as {
      exports: Record<string, { types: string; default: string }>;
    };
    expect(pkg.exports).toEqual({
      ".": { types: "./dist/runtime/index.d.ts", default: "./dist/runtime/index.js" },
      "./actors": { types: "./dist/runtime/actors.d.ts", default: "./dist/runtime/actors.js" },
      "./internal": { types: "./dist/runtime/internal.d.ts", default: "./dist/runtime/internal.js" },
    });
  });
});
