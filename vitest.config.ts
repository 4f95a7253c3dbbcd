import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The chaos suite kills processes and restarts services: it runs on its own (npm run test:chaos).
    exclude: ['test/chaos/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-setup.ts'],
    // Two cores here: more forks only contend for Postgres and Redis.
    maxWorkers: 2,
  },
});
