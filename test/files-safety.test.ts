import { mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCode, encode } from "../runtime/index.js";
import { checkName, checkRelativePath } from "../protocol/paths.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";
import { RawSession } from "./raw-session.js";

/** Paths every side must refuse, with why. */
const EVIL_PATHS: Record<string, string> = {
  "parent": "../secret.txt",
  "nested parent": "logs/../../secret.txt",
  "absolute": "/etc/passwd",
  "windows absolute": "C:/Windows/win.ini",
  "backslash": "logs\\..\\..\\secret.txt",
  "NUL byte": "logs/a\u0000b.txt",
  "control character": "logs/a\u0007b.txt",
  "device name": "CON",
  "device name with extension": "logs/nul.txt",
  "COM port": "com1",
  "empty": "",
  "empty segment": "logs//one.txt",
  "trailing slash": "logs/",
  "dot": "./logs/one.txt",
  "trailing dot": "logs/one.",
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
  it.each(Object.entries(EVIL_PATHS))("the path rules refuse %s", (_why, path) => {
    expect(() => checkRelativePath(path)).toThrow(expect.objectContaining({ code: ErrorCode.PATH_NOT_ALLOWED }));
  });

  it("single names: '/' inside, '..', reserved names and empty names are refused; ordinary names pass", () => {
    for (const bad of ["a/b", "..", ".", "", "PRN.txt", "aux", "LPT9.log", "x ", "a:b", "a*b"]) {
      expect(() => checkName(bad)).toThrow(expect.objectContaining({ code: ErrorCode.PATH_NOT_ALLOWED }));
    }
    for (const ok of ["app.log", "CONSOLE.txt", "con-fig", ".hidden", "data.tar.gz", "ünïcödé.txt"]) expect(() => checkName(ok)).not.toThrow();
  });

  it("downloads: the client refuses every evil path before sending, and the gateway refuses them too on the wire", async () => {
    const { controller, gw } = await sandbox();
    const client = await controller.getClient();
    const request = await rawSession(gw.endpoint);
    for (const [why, path] of Object.entries(EVIL_PATHS)) {
      await expect(client.getFilesFromGateway({ files: [path] }), why).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
      const listed = await request({ type: "file.list", files: [path] });
      expect(listed, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
      const got = await request({ type: "file.get", files: [[path, 0, 1]], chunkBytes: 1024, windowBytes: 4096, windowFiles: 4 });
      expect(got, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
      const folder = await request({ type: "file.list", folder: path });
      expect(folder, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
    }
  });

  it("downloads: symlinks leading out of the root are refused; a folder listing skips them; links inside are served", async () => {
    const { controller, local } = await sandbox();
    const client = await controller.getClient();
    await expect(client.getFilesFromGateway({ files: ["logs/leak.txt"] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(client.getFilesFromGateway({ folder: "escape" })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(client.getFilesFromGateway({ files: ["escape/secret.txt"] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    const paths = await client.getFilesFromGateway({ folder: "logs" });
    expect(paths.map((p) => p.slice(local.length + 1)).sort()).toEqual(["alias.txt", "one.txt"]);
    expect((await readdir(local)).sort()).toEqual(["alias.txt", "one.txt"]);
  });

  it("uploads: evil dirnames and names are refused by the client and by the gateway; nothing lands outside downloadDir", async () => {
    const { controller, gw, outside, local, downloadDir } = await sandbox();
    const client = await controller.getClient();
    const request = await rawSession(gw.endpoint);
    const file = join(local, "ok.txt");
    await writeFile(file, "payload");
    for (const [why, path] of Object.entries(EVIL_PATHS)) {
      await expect(client.sendFilesToGateway({ dirname: path, files: [file] }), why).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
      const asDir = await request({ type: "file.put", dirname: path, files: [["ok.txt", 7]], chunkBytes: 1024 });
      expect(asDir, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
      const asName = await request({ type: "file.put", dirname: "in", files: [[path, 7]], chunkBytes: 1024 });
      expect(asName, why).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
    }
    for (const name of ["a/b.txt", "../up.txt", "NUL"]) {
      const reply = await request({ type: "file.put", dirname: "in", files: [[name, 1]], chunkBytes: 1024 });
      expect(reply, name).toMatchObject({ type: "error", code: ErrorCode.PATH_NOT_ALLOWED });
    }
    // A local file whose name the other side could not hold is refused before sending.
    const con = join(local, "CON");
    await writeFile(con, "x");
    await expect(client.sendFilesToGateway({ dirname: "in", files: [con] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    // downloadDir/evil is a symlink out: refused, and nothing was written through it.
    await expect(client.sendFilesToGateway({ dirname: "evil", files: [file] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(client.sendFilesToGateway({ dirname: "evil/deeper", files: [file] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    expect((await readdir(outside)).sort()).toEqual(["secret.txt"]);
    // A target that is itself a symlink out is refused as well.
    await mkdir(join(downloadDir, "in"), { recursive: true });
    await symlink(join(outside, "secret.txt"), join(downloadDir, "in", "ok.txt"));
    await expect(client.sendFilesToGateway({ dirname: "in", files: [file] })).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    expect((await readdir(outside)).sort()).toEqual(["secret.txt"]);
    // And the handler still serves an honest upload.
    await expect(client.sendFilesToGateway({ dirname: "fine", files: [file] })).resolves.toBe(1);
  });

  it("a gateway without the folder, or a file root that does not exist, answers FILE_NOT_FOUND, never hangs", async () => {
    const gw = await startGateway({ fileRoots: ["/nonexistent/swarmnet-root"] });
    const local = await tempDir();
    const client = await controllerFor(gw, { downloadDir: local }).getClient();
    await expect(within(client.getFilesFromGateway({ folder: "." }), 5_000, "missing root")).rejects.toMatchObject({ code: ErrorCode.FILE_NOT_FOUND });
    await expect(within(client.getFilesFromGateway({ files: ["a.txt"] }), 5_000, "missing root")).rejects.toMatchObject({ code: ErrorCode.FILE_NOT_FOUND });
  });
});
