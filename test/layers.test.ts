/**
 * The import graph ARCHITECTURE.md draws: four layers (protocol <- transports <-
 * actors <- runtime), imports pointing down only; cli/, examples/ and bench/
 * on top, through runtime/ only; and no import cycle among the actors.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const LAYERS = ["protocol", "transports", "actors", "runtime"] as const;
const ON_TOP = ["cli", "examples", "bench"] as const;

function sources(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 6) return;
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path, depth + 1);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
    }
  };
  walk(folder, 0);
  return out;
}

/** The repository files `file` imports (relative specifiers only; `.js` names its `.ts`), with whether the import is type-only. */
function importsOf(file: string): { target: string; typeOnly: boolean }[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const found: { target: string; typeOnly: boolean }[] = [];
  const pattern = /^\s*(import|export)\s+(type\s+)?[^;]*?from\s+"(\.{1,2}\/[^"]+)"|import\("(\.{1,2}\/[^"]+)"\)/gm;
  for (const m of text.matchAll(pattern)) {
    const spec = m[3] ?? m[4]!;
    const target = normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts");
    found.push({ target, typeOnly: m[2] !== undefined });
  }
  return found;
}

const layerOf = (file: string): string => file.split("/")[0]!;

describe("import graph", () => {
  it("the four layers import downward only; cli, examples and bench use runtime/ (and protocol's errors through it) only", () => {
    const upward: string[] = [];
    for (const [rank, layer] of LAYERS.entries()) {
      for (const file of sources(layer)) {
        for (const { target } of importsOf(file)) {
          const to = layerOf(target);
          const toRank = (LAYERS as readonly string[]).indexOf(to);
          if (toRank > rank || (toRank < 0 && to !== layer)) upward.push(`${file} -> ${target}`);
        }
      }
    }
    const around: string[] = [];
    for (const top of ON_TOP) {
      for (const file of sources(top)) {
        for (const { target } of importsOf(file)) {
          const to = layerOf(target);
          if ((LAYERS as readonly string[]).includes(to) && to !== "runtime") around.push(`${file} -> ${target}`);
        }
      }
    }
    expect(upward).toEqual([]);
    expect(around).toEqual([]);
  });

  it("no import cycle among the actors (type-only imports included)", () => {
    const files = sources("actors");
    const edges = new Map(
      files.map((f) => [
        f,
        importsOf(f)
          .map((i) => i.target)
          .filter((t) => t.startsWith("actors/")),
      ]),
    );
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (file: string): void => {
      state.set(file, "open");
      stack.push(file);
      for (const next of edges.get(file) ?? []) {
        if (state.get(next) === "open")
          cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => relative("actors", f)).join(" -> "));
        else if (state.get(next) === undefined) visit(next);
      }
      stack.pop();
      state.set(file, "done");
    };
    for (const file of files) if (state.get(file) === undefined) visit(file);
    expect(files.length).toBeGreaterThan(10);
    expect(cycles).toEqual([]);
  });
});
