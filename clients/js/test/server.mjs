// A real `tori-ingest serve` on loopback for the client's tests: its own embedded Postgres in a
// temporary directory, or $DATABASE_URL when set (the project's test suite passes a scratch
// database). Restartable on the same port and data, as a deploy would.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const venv = join(here, "..", "..", "..", ".venv", "bin", "tori-ingest");
const BINARY = process.env.TORI_INGEST ?? (existsSync(venv) ? venv : "tori-ingest");

export const TOKENS = { app: "app-secret-0123456789", other: "other-secret-0123456789", greedy: "greedy-secret-0123456789" };
export const WEBHOOK_SECRET = "whsec_" + Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString("base64");

export async function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export class Service {
  constructor(env = {}) {
    this.dir = mkdtempSync(join(tmpdir(), "tori-js-"));
    this.env = {
      ...process.env,
      TORI_DATA_DIR: join(this.dir, "data"),
      TORI_SPACY_MODEL: "blank:en",
      TORI_POOL_SIZE: "1",
      TORI_AUTO_MIGRATE: "1",
      TORI_LOG_FORMAT: "json",
      TORI_TEST_HOOKS: "1",
      TORI_SHUTDOWN_GRACE_S: "0",
      TORI_API_TOKENS: Object.entries(TOKENS).map(([name, secret]) => `${name}:${secret}`).join(","),
      TORI_SECRET_KEY: "tickets-key-0123456789abcdef",
      TORI_WEBHOOK_SECRET: WEBHOOK_SECRET,
      TORI_WEBHOOK_ALLOW_PRIVATE: "1",
      ...env,
    };
    this.process = null;
    this.log = join(this.dir, "serve.log");
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port ??= await freePort();
    const out = openSync(this.log, "a");
    this.process = spawn(BINARY, ["serve", "--port", String(this.port)], {
      env: this.env,
      stdio: ["ignore", out, out],
    });
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.exited = exited;
    await waitFor(async () => {
      if (this.process.exitCode !== null) throw new Error(`serve exited; see ${this.log}`);
      try {
        return (await fetch(`${this.baseUrl}/readyz`)).ok;
      } catch {
        return false;
      }
    }, 120_000, "the service to be ready");
    return this;
  }

  /** SIGTERM and wait for the exit (the grace is 0: a running job goes back to the queue). */
  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill("SIGTERM");
    await this.exited;
  }
}

/** Polls `check` until it returns something truthy; fails after `ms`. */
export async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A one-page PDF with `text` (Helvetica), and `marker` as a comment line in its first KiB
 * (the service's test hooks: `%tori-test-slow=3`, `%tori-test-hang`). */
export function pdf(text, marker = "") {
  const stream = `BT /F1 18 Tf 72 720 Td (${text}) Tj ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let body = `%PDF-1.4\n${marker ? `%${marker.replace(/^%/, "")}\n` : ""}`;
  const offsets = [];
  objects.forEach((object, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  body += offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("");
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return new TextEncoder().encode(body);
}
