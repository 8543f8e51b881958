import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A temp dir of the run's own, checked for leftovers and removed at the end.
    globalSetup: ["test/global-tmpdir.ts"],
    // Real sockets and child processes: generous per-test bounds, but every wait
    // inside a test is bounded by its own deadline first.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Two cores: keep socket-heavy files from starving each other.
    maxWorkers: 2,
  },
});
