// One pooled SMTP transport per process, never one per send.
import nodemailer, { type Transporter } from 'nodemailer';

export function createTransport(smtpUrl: string): Transporter {
  const url = new URL(smtpUrl);
  const secure = url.protocol === 'smtps:';
  return nodemailer.createTransport({
    pool: true,
    maxConnections: 5,
    host: url.hostname,
    port: Number(url.port || (secure ? 465 : 587)),
    secure,
    auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
    // A local catcher or relay on loopback speaks plain SMTP; anything else must offer STARTTLS when asked.
    ignoreTLS: url.searchParams.get('tls') === 'off',
    requireTLS: url.searchParams.get('tls') === 'require',
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  });
}
