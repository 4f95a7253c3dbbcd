// A secret named by reference in the configuration: `env:NAME` (a variable of this process) or `file:PATH`
// (relative to the config folder; read again on every use, so a changed password file is picked up by the
// next connection without a restart).
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

export class SecretError extends Error {
  readonly code = 'secret_unreadable';
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

export function resolveSecret(ref: string, configDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const colon = ref.indexOf(':');
  const kind = ref.slice(0, colon);
  const where = ref.slice(colon + 1);
  if (kind === 'env') {
    const value = env[where];
    if (value === undefined || value === '') throw new SecretError(`environment variable ${where} is not set (the password is given as ${ref})`);
    return value;
  }
  if (kind === 'file') {
    const path = isAbsolute(where) ? where : join(configDir, where);
    try {
      // A trailing newline is the editor's, not the password's.
      return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SecretError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)}), named by ${ref}`);
    }
  }
  throw new SecretError(`"${kind}" is not a kind of secret reference: expected env:NAME or file:PATH`);
}
