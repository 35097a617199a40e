// @tori-ingest/client: the typed client of a tori-ingest service.
export { ToriClient, type ClientOptions } from "./client.js";
export { ToriError, type ErrorCode } from "./errors.js";
export type { FollowOptions, Unsubscribe } from "./live.js";
export { verifyWebhook, WEBHOOK_TOLERANCE_S, type WebhookEvent } from "./webhooks.js";
export * from "./types.js";
export type { components, paths } from "./generated/openapi.js";
