/**
 * W8's subroutines. The gateway registers them twice: on its event loop
 * (`addSubroutine`) and on worker threads (`addSubroutines` of this module).
 */

/** Burns `ms` of CPU: a camera frame or a sensor batch being crunched. */
export function burn(ms: number): number {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x > 0 ? ms : 0;
}

const REPLY = new Uint8Array(1024).fill(0x5a);

/** W2's subroutine: 1 KiB back. */
export function get(_index: number): Uint8Array {
  return REPLY.slice();
}

const ITEM = new Uint8Array(64).fill(0x61);

/** W3a's stream: `count` items of 64 bytes. */
export function* small(count: number): Generator<[number, Uint8Array]> {
  for (let i = 0; i < count; i++) yield [i, ITEM];
}
