// A real IMAP server for a test file: Debian's Dovecot, started in the foreground on loopback with a
// throwaway configuration in a temporary folder (users from a passwd-file, Maildir under the folder,
// plain IMAP on a free port). As root, Dovecot runs its processes and the mail as the unprivileged
// `dovecot` user; as anyone else, as that user. `.ci/run` installs dovecot-imapd where it is missing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { answersOnPort, freePort } from '../../src/dev/ports.js';

export const DOVECOT_BINARY = ['/usr/sbin/dovecot', '/usr/local/sbin/dovecot'].find((p) => existsSync(p)) ?? null;

export interface Dovecot {
  host: string;
  port: number;
  dir: string;
  /** Adds (or changes the password of) a mail user. */
  setUser(user: string, password: string): void;
  stop(): Promise<void>;
}

function idOf(name: string): { uid: number; gid: number } | null {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

export async function startDovecot(users: Record<string, string>): Promise<Dovecot> {
  if (!DOVECOT_BINARY) throw new Error('dovecot is not installed: apt-get install dovecot-imapd (.ci/run does it)');
  const dir = mkdtempSync(join(tmpdir(), 'nurture-dovecot-'));
  const root = process.getuid?.() === 0;
  // Root runs the mail as the package's own unprivileged user; anyone else as themselves.
  const me = root ? idOf('dovecot') : { uid: process.getuid!(), gid: process.getgid!() };
  if (!me) throw new Error('the dovecot system user is missing (reinstall dovecot-core)');
  const loginUser = root ? 'dovenull' : userInfo().username;
  const internalUser = root ? 'dovecot' : userInfo().username;
  const port = await freePort();
  for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d));
  const passwd = join(dir, 'passwd');
  const lines = new Map<string, string>();
  const writeUsers = () => writeFileSync(passwd, [...lines.values()].join('\n') + '\n', { mode: 0o644 });
  const setUser = (user: string, password: string) => {
    lines.set(user, `${user}:{PLAIN}${password}:${me.uid}:${me.gid}::${join(dir, 'mail', user)}`);
    writeUsers();
  };
  for (const [u, p] of Object.entries(users)) setUser(u, p);
  if (root) {
    chmodSync(dir, 0o755);
    chownSync(join(dir, 'mail'), me.uid, me.gid);
  }
  const conf = join(dir, 'dovecot.conf');
  writeFileSync(
    conf,
    `# throwaway test configuration
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
info_log_path = ${dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = ${internalUser}
default_internal_group = ${root ? 'dovecot' : userInfo().username}
default_login_user = ${loginUser}
first_valid_uid = ${me.uid}
last_valid_uid = ${me.uid}
first_valid_gid = 0
mail_location = maildir:~/Maildir
mail_fsync = never
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${passwd}
}
userdb {
  driver = passwd-file
  args = username_format=%u ${passwd}
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
service auth {
  unix_listener auth-userdb {
    mode = 0666
  }
}
`,
  );
  const child: ChildProcess = spawn(DOVECOT_BINARY, ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dovecot exited: ${output}${readLog(dir)}`);
    if (await answersOnPort(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`dovecot did not listen on ${port} in time: ${output}${readLog(dir)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host: '127.0.0.1',
    port,
    dir,
    setUser,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(dir: string): string {
  try {
    return `\n${readFileSync(join(dir, 'dovecot.log'), 'utf8')}`;
  } catch {
    return '';
  }
}
