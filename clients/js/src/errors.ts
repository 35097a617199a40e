import type { components } from "./generated/openapi.js";

/** An error code of the service (`error.code`), or `network` when it could not be reached. */
export type ErrorCode = components["schemas"]["ErrorCode"] | "network";

/** Every failure of the client: the service's error envelope, with the HTTP status and, for
 * 429 and 503, how long to wait (`Retry-After`, seconds). */
export class ToriError extends Error {
  override readonly name = "ToriError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly requestId: string | null;
  readonly retryAfter: number | null;

  constructor(init: {
    code: ErrorCode;
    message: string;
    status: number;
    requestId?: string | null;
    retryAfter?: number | null;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId ?? null;
    this.retryAfter = init.retryAfter ?? null;
  }
}

type Envelope = { error?: { code?: string; message?: string; request_id?: string } };

/** The ToriError of a non-2xx answer (its envelope, or what can be told without one). */
export async function errorOf(response: Response): Promise<ToriError> {
  let body: Envelope = {};
  try {
    body = (await response.json()) as Envelope;
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const retry = response.headers.get("retry-after");
  const seconds = retry === null ? null : Number(retry);
  return new ToriError({
    code: (body.error?.code ?? (response.status >= 500 ? "unavailable" : "bad_request")) as ErrorCode,
    message: body.error?.message ?? `HTTP ${response.status}`,
    status: response.status,
    requestId: body.error?.request_id ?? response.headers.get("x-request-id"),
    retryAfter: seconds !== null && Number.isFinite(seconds) ? seconds : null,
  });
}
