/**
 * What a path on the wire may look like, checked the same way on both sides
 * (pure: no file system here; containment and symlinks are checked where the
 * files are, in `actors/file-sandbox.ts`).
 *
 * A wire path is relative and `/`-separated. Refused: absolute paths (`/x`,
 * `C:x`, `\\server`), `.` and `..` segments, empty segments (`a//b`, a
 * trailing `/`), NUL and other control characters, backslashes and `:`
 * (separators or streams on Windows), `* ? " < > |`, names ending in a dot or
 * a space, and Windows device names with or without an extension (`CON`,
 * `nul.txt`, `COM1`, `LPT9`, ...), so that a tree written on one OS can be
 * read back on another.
 */
import { PathNotAllowedError } from "./errors.js";
import { MAX_NAME_LENGTH_BYTES, MAX_PATH_LENGTH } from "./limits.js";

const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\:*?"<>|]/;

function describe(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

/** Throws PathNotAllowedError unless `name` is one acceptable path segment. */
export function checkName(name: string, what = "name"): void {
  if (typeof name !== "string" || name.length === 0) throw new PathNotAllowedError(`${what} is empty`);
  if (name === "." || name === "..") throw new PathNotAllowedError(`${what} ${describe(name)} is not allowed`);
  if (FORBIDDEN_CHARS.test(name)) {
    throw new PathNotAllowedError(`${what} ${describe(name)} contains a control character or one of \\ : * ? " < > |`);
  }
  if (name.includes("/")) throw new PathNotAllowedError(`${what} ${describe(name)} must be a single name, without '/'`);
  if (Buffer.byteLength(name) > MAX_NAME_LENGTH_BYTES) throw new PathNotAllowedError(`${what} ${describe(name)} is longer than ${MAX_NAME_LENGTH_BYTES} bytes`);
  if (/[. ]$/.test(name)) throw new PathNotAllowedError(`${what} ${describe(name)} ends in a dot or a space`);
  if (RESERVED.test(name)) throw new PathNotAllowedError(`${what} ${describe(name)} is a reserved device name`);
}

/**
 * Throws PathNotAllowedError unless `path` is a safe relative path; returns its
 * segments. Every segment must pass `checkName`.
 */
export function checkRelativePath(path: string, what = "path"): string[] {
  if (typeof path !== "string" || path.length === 0) throw new PathNotAllowedError(`${what} is empty`);
  if (path.length > MAX_PATH_LENGTH) throw new PathNotAllowedError(`${what} is longer than ${MAX_PATH_LENGTH} characters`);
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.startsWith("\\")) {
    throw new PathNotAllowedError(`${what} ${describe(path)} is absolute: only paths relative to a root are allowed`);
  }
  const segments = path.split("/");
  for (const segment of segments) checkName(segment, `${what} ${describe(path)}: segment`);
  return segments;
}
