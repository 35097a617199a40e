import { errorOf, ToriError } from "./errors.js";
import { follow, subscribe, type FollowOptions, type Unsubscribe } from "./live.js";
import type {
  Accepted,
  Erased,
  Job,
  JobEvent,
  JobFilter,
  JobList,
  Result,
  SubmitOptions,
  Upload,
} from "./types.js";

export interface ClientOptions {
  /** Where the service answers, e.g. `https://ingest.example.com` (no trailing path). */
  baseUrl: string;
  /** An API token (server side only: it may do anything its name may). */
  token?: string;
  /** A job's ticket (the `ticket` of `submit`'s answer): reads that one job, and nothing else;
   * safe to hand to a browser. */
  ticket?: string;
  /** Another `fetch` (tests, instrumentation); the platform's by default. */
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | boolean | undefined>;
type ResultFormat = "json" | "text" | "markdown";

/** The service's API: every method throws `ToriError` on a non-2xx answer. */
export class ToriClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #ticket: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#ticket = options.ticket;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /** Upload one file (→ one job) or several (→ one job each, in order). */
  submit(file: Upload, options?: SubmitOptions): Promise<Accepted>;
  submit(files: Upload[], options?: SubmitOptions): Promise<Accepted[]>;
  async submit(files: Upload | Upload[], options: SubmitOptions = {}): Promise<Accepted | Accepted[]> {
    const many = Array.isArray(files);
    const form = new FormData();
    for (const file of many ? files : [files]) {
      const [blob, name] = asBlob(file);
      form.append("file", blob, name);
    }
    for (const key of ["priority", "password", "owner_ref", "callback_url", "ocr"] as const) {
      const value = options[key];
      if (value !== undefined) form.append(key, value);
    }
    const answer = await this.#json<Accepted | Accepted[]>("POST", "/jobs", {
      body: form,
      query: { reprocess: options.reprocess },
      headers: idempotency(options),
    });
    const list = Array.isArray(answer) ? answer : [answer];
    return many ? list : (list[0] as Accepted);
  }

  /** Submit files already in the service's import store (TORI_IMPORT_DIR / TORI_IMPORT_URL),
   * by relative path: one job each. */
  async submitPaths(paths: string[], options: SubmitOptions = {}): Promise<Accepted[]> {
    const { idempotencyKey: _key, reprocess, ...fields } = options;
    const answer = await this.#json<Accepted | Accepted[]>("POST", "/jobs", {
      body: JSON.stringify({ paths, ...fields }),
      query: { reprocess },
      headers: { "content-type": "application/json", ...idempotency(options) },
    });
    return Array.isArray(answer) ? answer : [answer];
  }

  /** A job's state (with `parts` while a long document runs in parts). */
  job(id: string): Promise<Job> {
    return this.#json<Job>("GET", `/jobs/${encodeURIComponent(id)}`);
  }

  /** Every job this token may see, newest first, page after page. */
  async *jobs(filter: JobFilter = {}): AsyncGenerator<Job, void, undefined> {
    let after: string | null | undefined;
    do {
      const page: JobList = await this.#json<JobList>("GET", "/jobs", {
        query: { ...filter, after: after ?? undefined },
      });
      yield* page.jobs;
      after = page.next;
    } while (after);
  }

  /** The result of a succeeded job: the whole result (`json`, the default), its cleaned text,
   * or its structure as Markdown. */
  result(id: string, options?: { format?: "json" }): Promise<Result>;
  result(id: string, options: { format: "text" | "markdown" }): Promise<string>;
  async result(id: string, options: { format?: ResultFormat } = {}): Promise<Result | string> {
    const format = options.format ?? "json";
    const response = await this.#send("GET", `/jobs/${encodeURIComponent(id)}/result`, {
      query: { format: format === "json" ? undefined : format },
    });
    return format === "json" ? ((await response.json()) as Result) : response.text();
  }

  /** Cancel a job (nothing happens to an ended one); `erase` also deletes its document. */
  cancel(id: string, options: { erase?: boolean } = {}): Promise<Job | Erased> {
    return this.#json("DELETE", `/jobs/${encodeURIComponent(id)}`, { query: { erase: options.erase } });
  }

  /** Queue a failed or cancelled job again (with the password an encrypted PDF needed). */
  retry(id: string, options: { password?: string } = {}): Promise<Job> {
    return this.#json<Job>("POST", `/jobs/${encodeURIComponent(id)}/retry`, {
      body: JSON.stringify(options),
      headers: { "content-type": "application/json" },
    });
  }

  /** Live updates of one job until its terminal state, which the promise resolves to. */
  follow(id: string, options: FollowOptions = {}): Promise<JobEvent> {
    return follow(this, id, options);
  }

  /** Live updates of several jobs on one socket (reconnecting, like `follow`); call the
   * answer to stop. `onError`: an id the caller may not read, or a refused socket. */
  subscribe(
    ids: string[],
    onUpdate: (event: JobEvent) => void,
    onError?: (error: ToriError | Error) => void,
  ): Unsubscribe {
    return subscribe(this, ids, onUpdate, onError);
  }

  /** Where the original upload can be downloaded (with this client's ticket, if any: a link a
   * browser can open; a token cannot ride in a URL). */
  fileUrl(id: string): string {
    return this.url(`/jobs/${encodeURIComponent(id)}/file`);
  }

  /** An absolute URL of the service (`ws:`/`wss:` for WebSocket paths), with the ticket. A
   * relative `baseUrl` (the service behind the app's own origin, e.g. `/tori`) is resolved
   * against the page's address. */
  url(path: string, query: Query = {}, websocket = false): string {
    const page = (globalThis as { location?: { href: string } }).location?.href;
    const url = new URL(this.baseUrl + path, page);
    if (websocket) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    for (const [key, value] of Object.entries({ ...query, ticket: this.#ticket })) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url.toString();
  }

  /** Headers a request (or, in Node, a WebSocket) carries: the token, if any. */
  authHeaders(): Record<string, string> {
    return this.#token ? { authorization: `Bearer ${this.#token}` } : {};
  }

  async #json<T>(method: string, path: string, init: Init = {}): Promise<T> {
    return (await (await this.#send(method, path, init)).json()) as T;
  }

  async #send(method: string, path: string, init: Init = {}): Promise<Response> {
    let response: Response;
    try {
      response = await this.#fetch(this.url(path, init.query), {
        method,
        body: init.body ?? null,
        headers: { accept: "application/json", ...this.authHeaders(), ...init.headers },
      });
    } catch (cause) {
      throw new ToriError({
        code: "network",
        message: `could not reach ${this.baseUrl}: ${String(cause)}`,
        status: 0,
        cause,
      });
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

interface Init {
  body?: BodyInit;
  query?: Query;
  headers?: Record<string, string>;
}

function idempotency(options: SubmitOptions): Record<string, string> {
  return options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {};
}

function asBlob(file: Upload): [Blob, string] {
  if (file instanceof Blob) {
    return [file, "name" in file && typeof file.name === "string" ? file.name : "upload.pdf"];
  }
  const type = file.type ?? "application/octet-stream";
  const data = file.data;
  const bytes = data instanceof Blob || data instanceof ArrayBuffer ? data : new Uint8Array(data);
  const blob = bytes instanceof Blob ? bytes : new Blob([bytes], { type });
  return [blob, file.name];
}
