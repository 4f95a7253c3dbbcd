// `nurture enroll <sequence> --lead EMAIL` and `nurture fanout <sequence>`: entry by hand, through the
// same use cases the webhooks call.
import { eq } from 'drizzle-orm';
import { leads } from '../db/schema.js';
import { startFanOut } from '../usecases/fanOutSegment.js';
import { enrollExisting, exitLead } from '../usecases/enrollLead.js';
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

export async function fanoutCommand(o: { sequence: string; write?: (l: string) => void }): Promise<number> {
  const write = o.write ?? ((l: string) => console.log(l));
  const rt = await startRuntime({ embedded: false, sends: false });
  try {
    const seq = rt.ctx.config.sequences.get(o.sequence);
    const { runId } = await startFanOut(rt.ctx, o.sequence);
    const audience = seq ? (await rt.ctx.db.select({ id: leads.id }).from(leads).where(eq(leads.stage, seq.stage))).length : 0;
    write(`fan-out ${runId} of ${o.sequence} started: up to ${audience} leads in ${seq?.stage}; follow it with nurture logs -f --sequence ${o.sequence}`);
    return 0;
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
