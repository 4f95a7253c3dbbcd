// `nurture enroll <sequence> --lead EMAIL` and `nurture exit --lead EMAIL`: entry and exit by hand,
// through the same use cases the webhooks call.
import { enrollExisting, exitLead } from '../usecases/enrollLead.js';
import { userInfo } from 'node:os';
import { releaseDeferred } from '../usecases/releaseStep.js';
import { startRuntime } from './runtime.js';

export async function enrollCommand(o: { sequence: string; email: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const r = await enrollExisting(rt.ctx, o.sequence, o.email);
    for (const e of r.enrolled) write(`enrolled ${o.email} in ${e.sequence} (${e.enrollmentId})`);
    for (const e of r.refused) write(`not enrolled in ${e.sequence}: ${e.reason}`);
    return r.enrolled.length ? 0 : 1;
  } finally {
    await rt.stop();
  }
}

export async function exitCommand(o: { email: string; sequence?: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const { exited } = await exitLead(rt.ctx, o.email, o.sequence);
    write(`${o.email}: ${exited} enrollment(s) exited${o.sequence ? ` from ${o.sequence}` : ''}`);
    return 0;
  } finally {
    await rt.stop();
  }
}

/** `nurture release --lead EMAIL [--step ID] --reason TEXT`: send a deferred step now, the reason logged. */
export async function releaseCommand(o: { email: string; step?: string; reason: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const { released } = await releaseDeferred(rt.ctx, o.email, { ...(o.step ? { step: o.step } : {}), reason: o.reason, by: `the CLI (${userInfo().username})` });
    for (const r of released) write(`${o.email}: ${r.sequence}/${r.step} released (was waiting on its ${r.was}); it goes out now`);
    if (!released.length) write(`${o.email}: nothing released (a value-first gate still holds the step)`);
    return released.length ? 0 : 1;
  } finally {
    await rt.stop();
  }
}
