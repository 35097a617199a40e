// The platform's WebSocket (browsers, Node >= 22), else the optional peer `ws` (Node 20).

/** The part of a WebSocket the client uses: the browser's API, which `ws` also offers. */
export interface Socket {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

type Opener = (url: string, headers: Record<string, string>) => Socket;
let opener: Promise<Opener> | undefined;

/** Open a socket; `headers` (the token) go as headers where the platform allows it, else the
 * token rides in the URL (`?token=`, which the service accepts and never logs). */
export async function openSocket(url: string, headers: Record<string, string>): Promise<Socket> {
  opener ??= findOpener();
  return (await opener)(url, headers);
}

async function findOpener(): Promise<Opener> {
  const native = (globalThis as { WebSocket?: new (url: string) => Socket }).WebSocket;
  if (native) {
    return (url, headers) => new native(withToken(url, headers));
  }
  const name = "ws"; // not a static import: bundlers for browsers must not pull it in
  let module: { default: new (url: string, options: object) => Socket };
  try {
    module = (await import(/* @vite-ignore */ name)) as typeof module;
  } catch (cause) {
    throw new Error("no WebSocket on this platform: install the `ws` package (Node < 22)", { cause });
  }
  return (url, headers) => new module.default(url, { headers });
}

function withToken(url: string, headers: Record<string, string>): string {
  const bearer = headers.authorization?.replace(/^Bearer /, "");
  if (!bearer) return url;
  const out = new URL(url);
  out.searchParams.set("token", bearer);
  return out.toString();
}

/** A message's text (a string in browsers and `ws`, bytes elsewhere). */
export function text(data: unknown): string {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return new TextDecoder().decode(data as ArrayBuffer);
  }
  return String(data);
}
