// Standard Webhooks verification (what the service signs with TORI_WEBHOOK_SECRET): WebCrypto
// only, so it runs in Node, Deno, edge runtimes and browsers alike.
import { ToriError } from "./errors.js";
import type { Job } from "./types.js";

/** A terminal state the service POSTed to a callback URL. */
export interface WebhookEvent {
  type: "job.succeeded" | "job.failed" | "job.cancelled";
  data: Job;
}

type Bytes = Uint8Array<ArrayBuffer>;
type HeaderBag = Headers | Record<string, string | string[] | undefined>;

/** Seconds a delivery's timestamp may be off (replays older than this are refused). */
export const WEBHOOK_TOLERANCE_S = 300;

/** The event, when `body` (the raw bytes or text, exactly as received) carries a valid
 * signature by `secret` (`whsec_…`; several during a rotation); else throws ToriError
 * `unauthorized`. */
export async function verifyWebhook(
  body: string | Uint8Array | ArrayBuffer,
  headers: HeaderBag,
  secret: string | string[],
  now: Date = new Date(),
): Promise<WebhookEvent> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures) throw refused("the webhook-id, -timestamp or -signature header is missing");
  const sent = Number(timestamp);
  if (!Number.isInteger(sent) || Math.abs(now.getTime() / 1000 - sent) > WEBHOOK_TOLERANCE_S) {
    throw refused("the webhook's timestamp is too old or too new (a replay?)");
  }
  const raw = typeof body === "string" ? new TextEncoder().encode(body) : new Uint8Array(body);
  const signed = concat(new TextEncoder().encode(`${id}.${timestamp}.`), raw);
  const offered = signatures
    .split(" ")
    .filter((s) => s.startsWith("v1,"))
    .map((s) => s.slice(3));
  for (const key of Array.isArray(secret) ? secret : [secret]) {
    const expected = await sign(key, signed);
    if (offered.some((candidate) => sameText(candidate, expected))) {
      return JSON.parse(new TextDecoder().decode(raw)) as WebhookEvent;
    }
  }
  throw refused("no webhook signature matches the secret");
}

async function sign(secret: string, data: Bytes): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    fromBase64(secret.startsWith("whsec_") ? secret.slice(6) : secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return toBase64(new Uint8Array(await crypto.subtle.sign("HMAC", key, data)));
}

function header(headers: HeaderBag, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name) ?? undefined;
  const bag = headers as Record<string, string | string[] | undefined>;
  const found = Object.keys(bag).find((key) => key.toLowerCase() === name);
  const value = found === undefined ? undefined : bag[found];
  return Array.isArray(value) ? value.join(" ") : value;
}

/** Compares in time independent of where the strings differ. */
function sameText(a: string, b: string): boolean {
  let differ = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) differ |= (a.charCodeAt(i) || 0) ^ b.charCodeAt(i);
  return differ === 0;
}

function concat(a: Uint8Array, b: Uint8Array): Bytes {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function fromBase64(text: string): Bytes {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function refused(message: string): ToriError {
  return new ToriError({ code: "unauthorized", message, status: 401 });
}
