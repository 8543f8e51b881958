/**
 * The "car": a gateway that streams simulated camera frames with proximity
 * and speed readings, and takes steering commands as batch sends.
 *
 * A tiny world model, one step per tick: the car speeds up under throttle,
 * slows under brake, and closes in on an obstacle ahead. Once the car has
 * stood still in front of it for a while, the obstacle moves away.
 */
import { Gateway, type Kwargs } from "../../runtime/index.js";

/** One sensor reading, as the `sensors` stream yields it. */
export interface Telemetry {
  /** Distance to the nearest obstacle ahead; 400 means nothing in range. */
  proximityCm: number;
  speedKmh: number;
  /** A (very) low-resolution camera frame; its first byte is where the lane centre is. */
  frame: Uint8Array;
}

/** A steering command as bytes: throttle %, brake %, wheel angle + 128. */
export function steeringBytes(command: { throttle: number; brake: number; angle: number }): Uint8Array {
  return Uint8Array.of(command.throttle, command.brake, command.angle + 128);
}

export const PROXIMITY_RANGE_CM = 400;
const FRAME_BYTES = 1024;
const MAX_SPEED_CM_PER_TICK = 6;
/** Ticks the car must stand still before the obstacle walks off. */
const OBSTACLE_PATIENCE_TICKS = 10;

class World {
  obstacleCm: number;
  speed = 0; // cm per tick
  throttle = 0;
  brake = 0;
  angle = 0;
  stillTicks = 0;
  tick = 0;

  constructor(obstacle: boolean) {
    this.obstacleCm = obstacle ? 300 : Infinity;
  }

  step(): Telemetry {
    this.tick++;
    if (this.brake > 0) this.speed = Math.max(0, this.speed - 4);
    else if (this.throttle > 0) this.speed = Math.min(MAX_SPEED_CM_PER_TICK, this.speed + 1);
    if (Number.isFinite(this.obstacleCm)) {
      this.obstacleCm = Math.max(5, this.obstacleCm - this.speed);
      this.stillTicks = this.speed === 0 ? this.stillTicks + 1 : 0;
      if (this.stillTicks >= OBSTACLE_PATIENCE_TICKS) this.obstacleCm = Infinity;
    }
    const frame = new Uint8Array(FRAME_BYTES);
    // The lane drifts slowly left and right; the driver steers against it.
    frame[0] = 128 + Math.round(20 * Math.sin(this.tick / 15)) - this.angle;
    return {
      proximityCm: Math.min(PROXIMITY_RANGE_CM, Math.round(this.obstacleCm)),
      speedKmh: Math.round(this.speed * 3.6 * 10) / 10,
      frame,
    };
  }
}

export interface CarOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Start with an obstacle ahead. @default true */
  obstacle?: boolean;
  log?: (line: string) => void;
}

/** Starts the car's gateway: subroutines `sensors` (generator) and `steer` (batch send). */
export async function startCar(options: CarOptions = {}): Promise<Gateway> {
  const log = options.log ?? (() => undefined);
  const world = new World(options.obstacle ?? true);
  const gw = new Gateway({ host: options.host ?? "127.0.0.1", port: options.port ?? 0, maxPoolSize: 4, stopGraceMs: 200 });

  gw.addSubroutine("sensors", async function* (tickMs: number) {
    try {
      for (let i = 0; ; i++) {
        await new Promise((r) => setTimeout(r, tickMs));
        yield [i, world.step()];
      }
    } finally {
      log("  [car] sensors stream closed");
    }
  });

  let commands = 0;
  gw.addSubroutine("steer", (seq: number, kwargs: Kwargs & { buffer: Uint8Array }) => {
    const [throttle = 0, brake = 0, angle = 128] = kwargs.buffer;
    world.throttle = throttle;
    world.brake = brake;
    world.angle = angle - 128;
    commands++;
    return seq;
  });

  await gw.start();
  gw.closed.then(
    () => log(`  [car] gateway stopped after ${commands} steering commands`),
    () => undefined,
  );
  return gw;
}
