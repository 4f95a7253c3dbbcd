// Standard Webhooks signing lives with its other user, the outbound webhooks (src/webhooks/signing.ts):
// the HTTP side verifies with it, the use cases sign with it, and neither reaches into the other.
export * from '../webhooks/signing.js';
