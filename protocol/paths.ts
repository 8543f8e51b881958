/**
 * What a path on the wire may look like, checked the same way on both sides
 * (pure: no file system here; containment and symlinks are checked where the
 * files are, in `actors/file-sandbox.ts`).
 *
 * Names are bytes: `:`, `?`, `*`, newlines, a trailing dot, `aux.c` are all
 * names a Linux file system holds, so the wire carries them as they are. What
 * the wire refuses is only what is never a name anywhere: an empty name, `.`
 * and `..`, `/` inside a name, and NUL. Whether the *receiving* file system
 * can hold a name is asked separately, by `localNameProblem` on the receiver,
 * and a name it cannot hold is reported for that path, never dropped.
 */
import { PathNotAllowedError } from "./errors.js";
import { MAX_NAME_LENGTH_BYTES, MAX_PATH_LENGTH } from "./limits.js";

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
const WINDOWS_FORBIDDEN = /[\u0000-\u001f\\:*?"<>|]/;

function describe(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

/** Throws PathNotAllowedError unless `name` is one name on the wire: not empty, `.`, `..`, no `/` and no NUL. */
export function checkName(name: string, what = "name"): void {
  if (typeof name !== "string" || name.length === 0) throw new PathNotAllowedError(`${what} is empty`);
  if (name === "." || name === "..") throw new PathNotAllowedError(`${what} ${describe(name)} is not allowed`);
  if (name.includes("\u0000")) throw new PathNotAllowedError(`${what} ${describe(name)} contains a NUL character`);
  if (name.includes("/")) throw new PathNotAllowedError(`${what} ${describe(name)} must be a single name, without '/'`);
}

/**
 * Why this machine's file system cannot hold `name` (a single name), or
 * undefined when it can. On Windows: `\ : * ? " < > |`, control characters,
 * a trailing dot or space, device names (`CON`, `nul.txt`, `COM1`, ...). Everywhere:
 * longer than 255 bytes.
 */
export function localNameProblem(name: string, platform: NodeJS.Platform = process.platform): string | undefined {
  if (Buffer.byteLength(name) > MAX_NAME_LENGTH_BYTES)
    return `the name is ${Buffer.byteLength(name)} bytes, longer than this file system's ${MAX_NAME_LENGTH_BYTES}`;
  if (platform !== "win32") return undefined;
  if (WINDOWS_FORBIDDEN.test(name)) return "the name holds a character Windows does not allow in names";
  if (/[. ]$/.test(name)) return "Windows does not allow a name ending in a dot or a space";
  if (WINDOWS_RESERVED.test(name)) return "the name is a Windows device name";
  return undefined;
}

/**
 * Throws PathNotAllowedError unless `path` is a relative path whose every
 * segment passes `checkName` (used for listed paths and upload folders);
 * returns its segments.
 */
export function checkRelativePath(path: string, what = "path"): string[] {
  if (typeof path !== "string" || path.length === 0) throw new PathNotAllowedError(`${what} is empty`);
  if (path.length > MAX_PATH_LENGTH) throw new PathNotAllowedError(`${what} is longer than ${MAX_PATH_LENGTH} characters`);
  if (path.startsWith("/")) throw new PathNotAllowedError(`${what} ${describe(path)} is absolute: a relative path is needed here`);
  const segments = path.split("/");
  for (const segment of segments) checkName(segment, `${what} ${describe(path)}: segment`);
  return segments;
}

/**
 * A path a client asks the gateway for (`folder`, `files`), as a user writes
 * it: `logs/` and `./logs` mean `logs`, `a//b` means `a/b`, `""` and `./`
 * mean `.` (the root). An absolute path stays absolute: the gateway serves it
 * only if it lies inside a file root. `..` is refused (it can only climb out),
 * and so is NUL.
 */
export function normalizeRequestPath(path: string, what = "path"): string {
  if (typeof path !== "string") throw new PathNotAllowedError(`${what} must be a string`);
  if (path.length > MAX_PATH_LENGTH) throw new PathNotAllowedError(`${what} is longer than ${MAX_PATH_LENGTH} characters`);
  if (path.includes("\u0000")) throw new PathNotAllowedError(`${what} ${describe(path)} contains a NUL character`);
  const absolute = path.startsWith("/");
  const segments = path.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes(".."))
    throw new PathNotAllowedError(`${what} ${describe(path)} contains '..': only paths inside a file root are allowed`);
  if (absolute) return `/${segments.join("/")}`;
  if (segments.length === 0) {
    if (path === "") throw new PathNotAllowedError(`${what} is empty`);
    return ".";
  }
  return segments.join("/");
}

/** What `fs.Stats` and `fs.Dirent` both tell about an entry's kind. */
export interface EntryKind {
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** An entry that is not a regular file, in words for an error: "a FIFO", "a socket", "a device", "a folder", "a symlink", else "not a regular file". */
export function kindOfEntry(entry: EntryKind): string {
  if (entry.isFIFO()) return "a FIFO";
  if (entry.isSocket()) return "a socket";
  if (entry.isCharacterDevice() || entry.isBlockDevice()) return "a device";
  if (entry.isDirectory()) return "a folder";
  if (entry.isSymbolicLink()) return "a symlink";
  return "not a regular file";
}
