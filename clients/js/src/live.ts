// Live job state over WebSockets: `follow` one job to its end, `subscribe` to several. Both
// reconnect with backoff and resync from the snapshot the service sends first on every socket,
// so a restart or a dropped connection never loses an update that matters: the terminal state.
import { ToriError } from "./errors.js";
import { openSocket, text, type Socket } from "./socket.js";
import { TERMINAL, type EventError, type JobEvent } from "./types.js";

/** What the client must give the live functions (the `ToriClient` does). */
export interface Endpoint {
  url(path: string, query?: Record<string, string>, websocket?: boolean): string;
  authHeaders(): Record<string, string>;
}

export interface FollowOptions {
  /** Every state the job passes through, newest only (never an older one after a newer). */
  onUpdate?: (event: JobEvent) => void;
  /** Stops following (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

export type Unsubscribe = () => void;

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;
// Close codes of the service: the caller may not read the job, or it does not exist.
const CLOSED_FOR: Record<number, [ToriError["code"], number]> = {
  4401: ["unauthorized", 401],
  4404: ["not_found", 404],
};

/** Resolves with the job's terminal state; reconnects for as long as it takes (pass a
 * `signal`, e.g. `AbortSignal.timeout(ms)`, to give up). */
export function follow(client: Endpoint, id: string, options: FollowOptions = {}): Promise<JobEvent> {
  const { onUpdate, signal } = options;
  return new Promise<JobEvent>((resolve, reject) => {
    let socket: Socket | undefined;
    let version = -1;
    let ended = false;
    const end = (settle: () => void) => {
      ended = true;
      signal?.removeEventListener("abort", abort);
      socket?.close();
      settle();
    };
    const abort = () => end(() => reject(signal?.reason));
    if (signal?.aborted) return abort();
    signal?.addEventListener("abort", abort, { once: true });

    const backoff = new Backoff();
    const connect = async () => {
      if (ended) return;
      try {
        socket = await openSocket(client.url(`/ws/jobs/${encodeURIComponent(id)}`, {}, true), client.authHeaders());
      } catch (error) {
        return end(() => reject(error));
      }
      if (ended) return socket.close();
      socket.onmessage = (message) => {
        const event = JSON.parse(text(message.data)) as JobEvent | EventError;
        if (event.type === "error") {
          return end(() => reject(eventError(event as EventError)));
        }
        const state = event as JobEvent;
        backoff.reset();
        if (state.version <= version) return; // a resync that brings nothing new
        version = state.version;
        onUpdate?.(state);
        if (TERMINAL.has(state.status)) end(() => resolve(state));
      };
      socket.onerror = () => {}; // a close follows; that is where it is handled
      socket.onclose = (closed) => {
        if (ended) return;
        const refused = CLOSED_FOR[closed.code];
        if (refused) {
          const [code, status] = refused;
          return end(() => reject(new ToriError({ code, status, message: closed.reason || code })));
        }
        setTimeout(connect, backoff.next());
      };
    };
    void connect();
  });
}

/** One socket for many jobs: `onUpdate` gets each job's states in order; the answer stops it. */
export function subscribe(
  client: Endpoint,
  ids: string[],
  onUpdate: (event: JobEvent) => void,
  onError: (error: ToriError | Error) => void = () => {},
): Unsubscribe {
  const versions = new Map<string, number>();
  const backoff = new Backoff();
  let socket: Socket | undefined;
  let stopped = false;
  const connect = async () => {
    if (stopped) return;
    try {
      socket = await openSocket(client.url("/ws", {}, true), client.authHeaders());
    } catch (error) {
      stopped = true;
      return onError(error as Error);
    }
    if (stopped) return socket.close();
    socket.onopen = () => socket?.send(JSON.stringify({ subscribe: ids }));
    socket.onmessage = (message) => {
      const event = JSON.parse(text(message.data)) as JobEvent | EventError | { type: string };
      if (event.type === "error") return onError(eventError(event as EventError));
      if (event.type !== "snapshot" && event.type !== "update") return; // another kind of message
      const state = event as JobEvent;
      backoff.reset();
      if (state.version <= (versions.get(state.job_id) ?? -1)) return;
      versions.set(state.job_id, state.version);
      onUpdate(state);
    };
    socket.onerror = () => {};
    socket.onclose = (closed) => {
      if (stopped) return;
      const refused = CLOSED_FOR[closed.code];
      if (refused) {
        stopped = true;
        const [code, status] = refused;
        return onError(new ToriError({ code, status, message: closed.reason || code }));
      }
      setTimeout(connect, backoff.next());
    };
  };
  void connect();
  return () => {
    stopped = true;
    socket?.close();
  };
}

function eventError(event: EventError): ToriError {
  const status = event.error.code === "not_found" ? 404 : event.error.code === "unauthorized" ? 401 : 400;
  return new ToriError({ code: event.error.code, message: event.error.message, status });
}

/** Exponential, capped, with jitter: a restarted service is not met by every client at once. */
class Backoff {
  #attempt = 0;
  next(): number {
    const ceiling = Math.min(FIRST_DELAY_MS * 2 ** this.#attempt++, MAX_DELAY_MS);
    return ceiling / 2 + (Math.random() * ceiling) / 2;
  }
  reset(): void {
    this.#attempt = 0;
  }
}
