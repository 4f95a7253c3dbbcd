// Figures a process observes as it works (how long rendering and the SMTP transaction take), kept per
// process in its own prom-client registry (never the library's global one) and served with the rest at
// GET /metrics. Counts that Postgres or Redis hold are read there at scrape time instead (src/http/metrics.ts).
import { Histogram, Registry } from 'prom-client';

export class ProcessMetrics {
  readonly registry = new Registry();

  /** Compiling (first use) and rendering one message's template. */
  readonly renderSeconds = new Histogram({
    name: 'nurture_render_duration_seconds',
    help: 'Time to compile (on first use) and render one message, in seconds.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /** One SMTP transaction, from handing the message to the transport to the relay's answer. */
  readonly sendSeconds = new Histogram({
    name: 'nurture_smtp_send_duration_seconds',
    help: "Time from handing a message to the relay to the relay's answer, in seconds, by outcome (sent, bounced, retry: a temporary refusal or no connection, uncertain).",
    labelNames: ['outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
}
