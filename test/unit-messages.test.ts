/**
 * The message table (protocol/messages.ts `MESSAGES`) checked entry by entry:
 * a new kind gets these checks without a new test. Each kind's example
 * envelope (built from its fields' examples) parses to itself; each required
 * field, taken away, and each field given a value of the wrong type is refused
 * with a ProtocolError that names the field. The docs list the same kinds.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/errors.js";
import { MESSAGES, errorReply, parseClientMessage, parseGatewayMessage, type Direction, type Field } from "../protocol/messages.js";

type Entry = {
  readonly dir: Direction;
  readonly fields: Readonly<Record<string, Field<unknown>>>;
  readonly zeroId: boolean;
  readonly raw?: "required" | "allowed";
  readonly example?: Record<string, unknown>;
};
const table = Object.entries(MESSAGES) as Array<[string, Entry]>;
type Parser = (value: unknown, hasRaw: boolean) => unknown;

/** The parsers that read a kind, and whether its example travels with a raw frame there. */
function parsersOf(entry: Entry): Array<[side: string, parse: Parser, hasRaw: boolean]> {
  const out: Array<[string, Parser, boolean]> = [];
  // A client may send a raw frame only with the kinds that take one; the gateway's messages may carry one.
  if (entry.dir === "client" || entry.dir === "both") out.push(["client", parseClientMessage, entry.raw === "required"]);
  if (entry.dir === "gateway" || entry.dir === "both") out.push(["gateway", parseGatewayMessage, true]);
  return out;
}

function exampleOf(type: string, entry: Entry): Record<string, unknown> {
  const fields = entry.example ?? Object.fromEntries(Object.entries(entry.fields).map(([name, f]) => [name, f.example]));
  return { type, id: entry.zeroId ? 0 : 7, ...fields };
}

const refused = (name: string) => expect.objectContaining({ code: ErrorCode.PROTOCOL, message: expect.stringContaining(`'${name}'`) });

describe("the message table", () => {
  const parsed = table.filter(([, entry]) => entry.dir !== "refusal");

  it.each(parsed)("%s: its example envelope parses to itself", (type, entry) => {
    for (const [, parse, hasRaw] of parsersOf(entry)) expect(parse(exampleOf(type, entry), hasRaw)).toEqual(exampleOf(type, entry));
  });

  it.each(parsed)("%s: every required field is required, and a wrong type is refused naming the field", (type, entry) => {
    let checked = 0;
    for (const [name, field] of Object.entries(entry.fields)) {
      for (const [, parse, hasRaw] of parsersOf(entry)) {
        if (field.missing === "error") {
          const { [name]: _, ...without } = exampleOf(type, entry);
          expect(() => parse(without, hasRaw)).toThrow(refused(name));
          checked++;
        }
        if (field.wrong !== undefined) {
          expect(() => parse({ ...exampleOf(type, entry), [name]: field.wrong }, hasRaw)).toThrow(refused(name));
          checked++;
        }
      }
    }
    // A kind with fields must have something to refuse, unless every field takes any value.
    const lenient = Object.values(entry.fields).every((f) => f.missing !== "error" && f.wrong === undefined);
    expect(checked > 0 || lenient).toBe(true);
  });

  it("a kind is read only by the side it is sent to; link.refused only after a REFUSED header", () => {
    for (const [type, entry] of table) {
      const example = exampleOf(type, entry);
      if (entry.dir === "gateway" || entry.dir === "refusal")
        expect(() => parseClientMessage(example, false)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
      if (entry.dir === "client" || entry.dir === "refusal")
        expect(() => parseGatewayMessage(example, true)).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
    }
  });

  it("errorReply builds the one error shape, name and stack only when given", () => {
    expect(errorReply(3, ErrorCode.BUSY, "busy")).toStrictEqual({ type: "error", id: 3, code: ErrorCode.BUSY, message: "busy" });
    expect(errorReply(3, ErrorCode.REMOTE, "x", { name: "TypeError", stack: undefined })).toStrictEqual({
      type: "error",
      id: 3,
      code: ErrorCode.REMOTE,
      message: "x",
      name: "TypeError",
    });
    const wire = errorReply(4, ErrorCode.REMOTE, "x", { name: "E", stack: "at f" });
    expect(parseGatewayMessage(wire, false)).toEqual(wire);
  });
});

describe("the docs list the table's kinds", () => {
  const root = new URL("..", import.meta.url).pathname;
  /** The first backticked word of each row's first cell ("`ping` / `pong`" gives both) of the table under `heading`. */
  function kindsUnder(file: string, heading: string): Set<string> {
    const text = readFileSync(root + file, "utf8");
    const start = text.indexOf(heading);
    expect(start, `${file} has '${heading}'`).toBeGreaterThanOrEqual(0);
    const kinds = new Set<string>();
    let inTable = false;
    for (const line of text.slice(start + heading.length).split("\n")) {
      if (!line.startsWith("|")) {
        if (inTable) break;
        continue;
      }
      inTable = true;
      const cell = line.split("|")[1] ?? "";
      for (const [, kind] of cell.matchAll(/`([a-z.]+)`/g)) if (kind !== "type") kinds.add(kind!);
    }
    return kinds;
  }
  const kindsFrom = (...dirs: Direction[]) => new Set(table.filter(([, e]) => dirs.includes(e.dir)).map(([type]) => type));

  it("PROTOCOL.md section 5: client -> gateway and gateway -> client", () => {
    expect([...kindsUnder("PROTOCOL.md", "### Client -> gateway")].sort()).toEqual([...kindsFrom("client", "both")].sort());
    expect([...kindsUnder("PROTOCOL.md", "### Gateway -> client")].sort()).toEqual([...kindsFrom("gateway", "both", "refusal")].sort());
  });

  it("ARCHITECTURE.md's message table", () => {
    expect([...kindsUnder("ARCHITECTURE.md", "| type | direction | fields | raw frame |")].sort()).toEqual(
      table.map(([type]) => type).sort(),
    );
  });
});
