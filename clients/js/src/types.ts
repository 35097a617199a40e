// Names for the service's own schemas (generated from its OpenAPI document at build time).
import type { components } from "./generated/openapi.js";

type Schemas = components["schemas"];
export type Accepted = Schemas["Accepted"];
export type Job = Schemas["JobView"] & Partial<Pick<Schemas["SplitJobView"], "parts">>;
export type JobList = Schemas["JobList"];
export type Part = Schemas["PartView"];
export type Result = Schemas["Result"];
export type JobEvent = Schemas["JobEvent"];
export type EventError = Schemas["EventError"];
export type Status = Schemas["Status"];
export type Lane = Schemas["Lane"];
export type OcrMode = Schemas["OcrMode"];
export type Erased = Schemas["Erased"];
export type Page = Schemas["Page"];
export type Block = Schemas["Block"];
export type Chunk = Schemas["Chunk"];
export type Entity = Schemas["Entity"];
export type Keyphrase = Schemas["Keyphrase"];

/** The states a job never leaves. */
export const TERMINAL: ReadonlySet<Status> = new Set<Status>(["succeeded", "failed", "cancelled"]);

/** What `submit` and `submitPaths` may set on the jobs they create. */
export interface SubmitOptions {
  password?: string;
  /** `interactive` (uploads' default) or `bulk` (by reference's default). */
  priority?: Lane;
  /** The app's own tag, e.g. its user id (metadata, not access). */
  owner_ref?: string;
  /** Receives a signed webhook at the job's terminal state (see `verifyWebhook`). */
  callback_url?: string;
  /** The same key with the same request returns the same job (safe retries). */
  idempotencyKey?: string;
  ocr?: OcrMode;
  /** Run again even if this document already has a result. */
  reprocess?: boolean;
}

/** `GET /jobs` filters; `jobs()` follows the pages itself. */
export interface JobFilter {
  status?: Status;
  lane?: Lane;
  owner_ref?: string;
  /** Jobs per page (1-200). */
  limit?: number;
}

/** A file to upload: a browser `File`, a `Blob` with a name, or bytes with a name. */
export type Upload = Blob | { name: string; data: Blob | ArrayBuffer | Uint8Array; type?: string };
