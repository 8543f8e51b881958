import { mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCode } from "../runtime/index.js";
import { encode } from "../runtime/internal.js";
import { checkName, checkRelativePath, localNameProblem, normalizeRequestPath } from "../protocol/paths.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";
import { RawSession } from "./raw-session.js";

/** Paths every side must refuse as a request, with why. */
const EVIL_PATHS: Record<string, string> = {
  parent: "../secret.txt",
  "nested parent": "logs/../../secret.txt",
  "parent after a dot": "./../secret.txt",
  "absolute outside every root": "/etc/passwd",
  "NUL byte": "logs/a\u0000b.txt",
  empty: "",
};

/** Listed paths (from a gateway) must be plain relative paths: these are refused too. */
const BAD_LISTED: Record<string, string> = {
  ...EVIL_PATHS,
  absolute: "/etc/passwd",
  "empty segment": "logs//one.txt",
  "trailing slash": "logs/",
  "dot segment": "./logs/one.txt",
};

async function sandbox() {
  const root = await tempDir("swarmnet-safe-root-");
  const outside = await tempDir("swarmnet-safe-outside-");
  const local = await tempDir("swarmnet-safe-local-");
  await mkdir(join(root, "logs"), { recursive: true });
  await writeFile(join(root, "logs", "one.txt"), "1");
  await writeFile(join(outside, "secret.txt"), "top secret");
  // Symlinks that lead out of the root: to a file and to a folder.
  await symlink(join(outside, "secret.txt"), join(root, "logs", "leak.txt"));
  await symlink(outside, join(root, "escape"));
  // A symlink that stays inside is fine.
  await symlink(join(root, "logs", "one.txt"), join(root, "logs", "alias.txt"));
  const downloadDir = join(root, "uploads");
  await mkdir(downloadDir, { recursive: true });
  await symlink(outside, join(downloadDir, "evil"));
  const gw = await startGateway({ fileRoots: [root], downloadDir });
  const controller = controllerFor(gw, { downloadDir: local });
  return { root, outside, local, downloadDir, gw, controller };
}

/** A bare DEALER speaking the wire protocol (and the session's delivery header), to reach the gateway's own checks past the client's. */
async function rawSession(endpoint: string) {
  const peer = new RawSession(endpoint);
  onTestFinished(() => peer.close());
  let nextId = 1;
  const request = (message: Record<string, unknown>): Promise<Record<string, unknown>> =>
    within(peer.request([encode({ ...message, id: nextId++ })]), 5_000, `answer to ${String(message["type"])}`);
  expect(await request({ type: "hello", v: 1 })).toBeDefined();
  return request;
}

describe("file transfer safety", () => {
  it.each(Object.entries(BAD_LISTED))("listed paths: the rules refuse %s", (_why, path) => {
    expect(() => checkRelativePath(path)).toThrow(expect.objectContaining({ code: ErrorCode.PATH_NOT_ALLOWED }));
  });

  it("requested paths: logs/, ./logs and logs//x are normalized; '..', NUL and empty are refused; absolute paths stay absolute", () => {
    expect(normalizeRequestPath("logs/")).toBe("logs");
    expect(normalizeRequestPath("./logs")).toBe("logs");
    expect(normalizeRequestPath("logs//one.txt")).toBe("logs/one.txt");
    expect(normalizeRequestPath("./")).toBe(".");
    expect(normalizeRequestPath("/srv/pi/logs/")).toBe("/srv/pi/logs");
    for (const [why, path] of Object.entries(EVIL_PATHS)) {
      if (path.startsWith("/")) continue;
      expect(() => normalizeRequestPath(path), why).toThrow(expect.objectContaining({ code: ErrorCode.PATH_NOT_ALLOWED }));
    }
  });

  it("names are bytes: only '/', NUL, '.', '..' and empty are refused on the wire; what a file system cannot hold is its own question", () => {
    for (const bad of ["a/b", "..", ".", "", "a\u0000b"]) {
      expect(() => checkName(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: ErrorCode.PATH_NOT_ALLOWED }));
    }
    const linuxNames = ["a:b.txt", "x?.txt", "line\nbreak.txt", "trailing.", "aux.c", "CON", "back\\slash", "ünïcödé.txt", "c".repeat(251)];
    for (const ok of linuxNames) {
      expect(() => checkName(ok)).not.toThrow();
      expect(localNameProblem(ok, "linux"), ok).toBeUndefined();
    }
    for (const windowsBad of ["a:b.txt", "x?.txt", "line\nbreak.txt", "trailing.", "aux.c", "CON", "back\\slash"]) {
      expect(localNameProblem(windowsBad, "win32"), windowsBad).toBeDefined();
    }
    expect(localNameProblem("ünïcödé.txt", "win32")).toBeUndefined();
    expect(localNameProblem("c".repeat(256), "linux")).toMatch(/256 bytes/);
  });

  it("downloads: the client refuses every evil path before sending, and the gateway refuses them too on the wire", async () => {
    const { controller, gw } = await sandbox();
    const client = await controller.getClient();
    const request = await rawSession(gw.endpoint);
    for (const [why, path] of Object.entries(EVIL_PATHS)) {
      const refusal = client.getFilesFromGateway({ files: [path] });
      await expect(refusal, why).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
      // A path outside the roots is refused with the roots named.
      if (path.startsWith("/")) await expect(refusal).rejects.toThrow(/file roots are/);
      const listed = await request({ type: "file.list", files: [path] });
      expect(listed, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
      const got = await request({ type: "file.get", files: [[path, 0, 1]], chunkBytes: 1024, windowBytes: 4096, windowFiles: 4 });
      expect(got, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
      const folder = await request({ type: "file.list", folder: path });
      expect(folder, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
    }
  });

  it("downloads: symlinks leading out of the root are refused; a folder listing reports them as not delivered; links inside are served", async () => {
    const { controller, local } = await sandbox();
    const client = await controller.getClient();
    await expect(client.getFilesFromGateway({ files: ["logs/leak.txt"] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(client.getFilesFromGateway({ folder: "escape" })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(client.getFilesFromGateway({ files: ["escape/secret.txt"] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    const listing = client.getFilesFromGateway({ folder: "logs" });
    await expect(listing).rejects.toMatchObject({
      code: ErrorCode.FILES_NOT_DELIVERED,
      report: {
        delivered: [join(local, "alias.txt"), join(local, "one.txt")],
        notDelivered: [{ path: "leak.txt", code: ErrorCode.PATH_NOT_ALLOWED }],
      },
    });
    expect((await readdir(local)).sort()).toEqual(["alias.txt", "one.txt"]);
  });

  it("uploads: evil dirnames and names are refused by the client and by the gateway; nothing lands outside downloadDir", async () => {
    const { controller, gw, outside, local, downloadDir } = await sandbox();
    const client = await controller.getClient();
    const request = await rawSession(gw.endpoint);
    const file = join(local, "ok.txt");
    await writeFile(file, "payload");
    for (const [why, path] of Object.entries(EVIL_PATHS)) {
      await expect(client.sendFilesToGateway({ dirname: path, files: [file] }), why).rejects.toMatchObject({
        code: ErrorCode.PATH_NOT_ALLOWED,
      });
      const asDir = await request({ type: "file.put", dirname: path, files: [["ok.txt", 7]], chunkBytes: 1024 });
      expect(asDir, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
      const asName = await request({ type: "file.put", dirname: "in", files: [[path, 7]], chunkBytes: 1024 });
      expect(asName, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
    }
    for (const name of ["a/b.txt", "../up.txt", "..", "a\u0000b"]) {
      const reply = await request({ type: "file.put", dirname: "in", files: [[name, 1]], chunkBytes: 1024 });
      expect(reply, name).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
    }
    // A name Windows could not hold is a name Linux holds: it lands byte-exact.
    const con = join(local, "CON");
    await writeFile(con, "x");
    await expect(client.sendFilesToGateway({ dirname: "in", files: [con] })).resolves.toBe(1);
    expect(await readdir(join(downloadDir, "in"))).toEqual(["CON"]);
    await rm(join(downloadDir, "in"), { recursive: true });
    // downloadDir/evil is a symlink out: refused, and nothing was written through it.
    await expect(client.sendFilesToGateway({ dirname: "evil", files: [file] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(client.sendFilesToGateway({ dirname: "evil/deeper", files: [file] })).rejects.toMatchObject({
      code: ErrorCode.PATH_NOT_ALLOWED,
    });
    expect((await readdir(outside)).sort()).toEqual(["secret.txt"]);
    // A target that is itself a symlink out is refused as well.
    await mkdir(join(downloadDir, "in"), { recursive: true });
    await symlink(join(outside, "secret.txt"), join(downloadDir, "in", "ok.txt"));
    await expect(client.sendFilesToGateway({ dirname: "in", files: [file] })).rejects.toMatchObject({
      code: ErrorCode.FILES_NOT_DELIVERED,
      report: { notDelivered: [{ path: file, code: ErrorCode.PATH_NOT_ALLOWED }] },
    });
    expect((await readdir(outside)).sort()).toEqual(["secret.txt"]);
    // And the handler still serves an honest upload.
    await expect(client.sendFilesToGateway({ dirname: "fine", files: [file] })).resolves.toBe(1);
  });

  it("a gateway without the folder, or a file root that does not exist, answers FILE_NOT_FOUND, never hangs", async () => {
    const gw = await startGateway({ fileRoots: ["/nonexistent/swarmnet-root"] });
    const local = await tempDir();
    const client = await controllerFor(gw, { downloadDir: local }).getClient();
    await expect(within(client.getFilesFromGateway({ folder: "." }), 5_000, "missing root")).rejects.toMatchObject({
      code: ErrorCode.FILE_NOT_FOUND,
    });
    await expect(within(client.getFilesFromGateway({ files: ["a.txt"] }), 5_000, "missing root")).rejects.toMatchObject({
      code: ErrorCode.FILE_NOT_FOUND,
    });
  });
});
