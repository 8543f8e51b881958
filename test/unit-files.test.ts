/** PartFile and the file messages without a network: temp names, the journal, resume rules, wire validation. */
import { randomBytes } from "node:crypto";
import { readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JOURNAL_MIN_BYTES, PartFile, tempBase } from "../actors/part-file.js";
import { ErrorCode, parseClientMessage, parseGatewayMessage } from "../protocol/index.js";
import { tempDir } from "./helpers.js";

const MiB = 1024 * 1024;

describe("PartFile", () => {
  it("temp names always fit: long names are cut on a character boundary with a hash that tells them apart", () => {
    const short = "report.pdf";
    expect(tempBase(short)).toBe(short);
    for (const long of ["c".repeat(247) + ".txt", "é".repeat(127), "a".repeat(255)]) {
      const base = tempBase(long);
      expect(Buffer.byteLength(`${base}.part.json~`)).toBeLessThanOrEqual(255);
      expect(Buffer.byteLength(`${base}.4194304.part`)).toBeLessThanOrEqual(255);
      expect(Buffer.from(base).toString()).toBe(base);
    }
    expect(tempBase("x".repeat(250) + "1")).not.toBe(tempBase("x".repeat(250) + "2"));
  });

  it("the journal lists only written ranges; the same source resumes them, another size or mtime starts over, a journal ahead of its .part is cut back", async () => {
    const dir = await tempDir("swarmnet-partfile-");
    const target = join(dir, "big.bin");
    const source = { size: JOURNAL_MIN_BYTES + 3 * MiB, mtimeMs: 1_700_000_000_123.5 };
    const bytes = randomBytes(source.size);
    const first = await PartFile.acquire({ target, source });
    await expect(PartFile.acquire({ target, source })).rejects.toMatchObject({ code: ErrorCode.FILE_BUSY });
    await first.write(0, bytes.subarray(0, MiB));
    await first.write(4 * MiB, bytes.subarray(4 * MiB, 6 * MiB));
    expect(first.missing()).toEqual([
      [MiB, 4 * MiB],
      [6 * MiB, source.size],
    ]);
    await first.release();
    expect((await readdir(dir)).sort()).toEqual(["big.bin.part", "big.bin.part.json"]);
    const journal = JSON.parse(await readFile(join(dir, "big.bin.part.json"), "utf8")) as { ranges: unknown };
    expect(journal.ranges).toEqual([
      [0, MiB],
      [4 * MiB, 6 * MiB],
    ]);

    const again = await PartFile.acquire({ target, source });
    expect(again.resumed).toBe(3 * MiB);
    expect(again.missing()).toEqual([
      [MiB, 4 * MiB],
      [6 * MiB, source.size],
    ]);
    for (const [s, e] of again.missing()) await again.write(s, bytes.subarray(s, e));
    expect(again.complete).toBe(true);
    await again.finish();
    expect(Buffer.compare(await readFile(target), bytes)).toBe(0);
    expect(await readdir(dir)).toEqual(["big.bin"]);

    // Another version of the source (same size, another mtime): nothing is resumed.
    const other = await PartFile.acquire({ target: join(dir, "other.bin"), source });
    await other.write(0, bytes.subarray(0, 2 * MiB));
    await other.release();
    const changed = await PartFile.acquire({ target: join(dir, "other.bin"), source: { ...source, mtimeMs: source.mtimeMs + 1 } });
    expect(changed.resumed).toBe(0);
    await changed.release();

    // A journal that claims more than the .part holds (the file was cut): only what is there counts.
    const cut = join(dir, "cut.bin");
    await writeFile(`${cut}.part`, bytes.subarray(0, MiB));
    await writeFile(
      `${cut}.part.json`,
      JSON.stringify({
        v: 1,
        ...source,
        ranges: [
          [0, MiB],
          [2 * MiB, 3 * MiB],
        ],
      }),
    );
    const clipped = await PartFile.acquire({ target: cut, source });
    expect(clipped.resumed).toBe(MiB);
    await clipped.release();
  });

  it("small files keep no journal and no lock; an unfinished one leaves nothing behind", async () => {
    const dir = await tempDir("swarmnet-partfile-small-");
    const part = await PartFile.acquire({ target: join(dir, "small.txt"), source: { size: 10, mtimeMs: 1 } });
    await part.write(0, Buffer.from("hello"));
    expect(await readdir(dir)).toEqual([`small.txt.${process.pid}.part`]);
    await part.release();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe("file messages", () => {
  it("file.ready, file.error, file.get and file.put entries are validated", () => {
    expect(
      parseGatewayMessage(
        {
          type: "file.ready",
          id: 1,
          missing: [[[0, 5]], []],
          refused: [[1, ErrorCode.FILE_EXISTS, "exists"]],
          windowBytes: 10,
          windowFiles: 2,
        },
        false,
      ),
    ).toMatchObject({
      missing: [[[0, 5]], []],
      refused: [[1, ErrorCode.FILE_EXISTS, "exists"]],
    });
    expect(() => parseGatewayMessage({ type: "file.ready", id: 1, missing: [[[5, 5]]], windowBytes: 10, windowFiles: 2 }, false)).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
    expect(parseClientMessage({ type: "file.error", id: 2, f: 0, code: ErrorCode.FILE_CHANGED, message: "changed" }, false)).toMatchObject({
      type: "file.error",
      f: 0,
    });
    expect(parseGatewayMessage({ type: "file.error", id: 2, f: 3, code: ErrorCode.FILE_ACCESS, message: "no" }, false)).toMatchObject({
      f: 3,
    });
    expect(
      parseClientMessage({ type: "file.get", id: 3, files: [["a", 0, 10, 10, 1.5]], chunkBytes: 1, windowBytes: 1, windowFiles: 1 }, false),
    ).toMatchObject({ files: [["a", 0, 10, 10, 1.5]] });
    expect(() =>
      parseClientMessage({ type: "file.get", id: 3, files: [["a", 0, 10, 10]], chunkBytes: 1, windowBytes: 1, windowFiles: 1 }, false),
    ).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
    expect(() => parseClientMessage({ type: "file.put", id: 4, dirname: "d", files: [["a", 10, 1, 8, 4]], chunkBytes: 1 }, false)).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
    expect(() =>
      parseClientMessage({ type: "file.put", id: 4, dirname: "d", files: [["a", 10]], chunkBytes: 1, ifExists: "sometimes" }, false),
    ).toThrow(expect.objectContaining({ code: ErrorCode.PROTOCOL }));
    expect(() => parseGatewayMessage({ type: "file.listing", id: 5, files: [["a", 1]], mtimes: [1, 2] }, false)).toThrow(
      expect.objectContaining({ code: ErrorCode.PROTOCOL }),
    );
  });
});
