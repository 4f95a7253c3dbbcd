// `npm run test:chaos`: the whole system (worker processes, Redis, Postgres, an SMTP relay) under faults.
// One file at a time: each spawns worker processes of its own, and this machine has two cores.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/chaos/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts', 'test/chaos/results-setup.ts'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
