// Finds (or starts) Postgres and Redis once for the whole run and hands their addresses to test files.
import type { TestProject } from 'vitest/node';
import { testServices } from './services.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const services = await testServices();
  project.provide('databaseUrl', services.databaseUrl);
  project.provide('redisUrl', services.redisUrl);
  return () => services.stop();
}
