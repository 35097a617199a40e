// The client against a real `tori-ingest serve` (loopback): every call of its surface, tickets,
// a restart in the middle of `follow`, errors as ToriError, a real signed webhook.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { randomUUID } from "node:crypto";

import { ToriClient, ToriError, verifyWebhook } from "../dist/index.js";
import { pdf, Service, TOKENS, waitFor, WEBHOOK_SECRET } from "./server.mjs";

const FOLLOW_MS = 60_000;
let service;
let app;

const unique = (marker = "") => pdf(`Hello from the client ${randomUUID()}`, marker);
const upload = (marker = "") => ({ name: "hello.pdf", data: unique(marker), type: "application/pdf" });

before(async () => {
  service = new Service({ TORI_RATE_LIMIT: "120/minute" });
  mkdirSync(join(service.dir, "import"), { recursive: true });
  service.env.TORI_IMPORT_DIR = join(service.dir, "import");
  await service.start();
  app = new ToriClient({ baseUrl: service.baseUrl, token: TOKENS.app });
});

after(async () => {
  await service?.stop();
});

describe("jobs", () => {
  it("uploads, follows to succeeded and reads the result in every format", async () => {
    const accepted = await app.submit(upload(), { owner_ref: "user-1" });
    assert.equal(accepted.status, "queued");
    assert.ok(accepted.ticket, "a ticket for the browser");
    const seen = [];
    const end = await app.follow(accepted.job_id, { onUpdate: (e) => seen.push(e), signal: AbortSignal.timeout(FOLLOW_MS) });
    assert.equal(end.status, "succeeded");
    assert.equal(seen.at(-1), end);
    assert.deepEqual(seen.map((e) => e.version), [...seen.map((e) => e.version)].sort((a, b) => a - b));
    const job = await app.job(accepted.job_id);
    assert.equal(job.owner_ref, "user-1");
    assert.equal(job.pages_done, 1);
    const result = await app.result(accepted.job_id);
    assert.equal(result.pages.length, 1);
    assert.match(await app.result(accepted.job_id, { format: "text" }), /Hello from the client/);
    assert.match(await app.result(accepted.job_id, { format: "markdown" }), /Hello from the client/);
  });

  it("submits several files at once, and files by path", async () => {
    const many = await app.submit([upload(), upload()]);
    assert.equal(many.length, 2);
    writeFileSync(join(service.dir, "import", "by-path.pdf"), unique());
    const [byPath] = await app.submitPaths(["by-path.pdf"], { priority: "interactive" });
    const ends = await Promise.all([...many, byPath].map((a) => app.follow(a.job_id)));
    assert.deepEqual(ends.map((e) => e.status), ["succeeded", "succeeded", "succeeded"]);
  });

  it("an idempotency key returns the same job, and refuses another request", async () => {
    const key = randomUUID();
    const file = upload();
    const first = await app.submit(file, { idempotencyKey: key });
    const again = await app.submit(file, { idempotencyKey: key });
    assert.equal(again.job_id, first.job_id);
    await assert.rejects(app.submit(upload(), { idempotencyKey: key }), (e) => {
      return e instanceof ToriError && e.status === 409 && e.code === "idempotency_conflict";
    });
  });

  it("lists jobs page after page, filtered", async () => {
    const tag = `tag-${randomUUID()}`;
    const made = await app.submit([upload(), upload(), upload()], { owner_ref: tag, priority: "bulk" });
    const listed = [];
    for await (const job of app.jobs({ owner_ref: tag, limit: 1 })) listed.push(job.job_id);
    assert.deepEqual(listed.sort(), made.map((a) => a.job_id).sort());
  });

  it("cancels a running job and retries it", async () => {
    const { job_id } = await app.submit(upload("tori-test-hang"));
    await waitFor(async () => (await app.job(job_id)).status === "running", 30_000, "the job to run");
    await app.cancel(job_id);
    assert.equal((await app.follow(job_id)).status, "cancelled");
    const again = await app.retry(job_id);
    assert.ok(["queued", "running"].includes(again.status));
    await app.cancel(job_id);
    assert.equal((await app.follow(job_id)).status, "cancelled");
  });

  it("follows several jobs on one socket", async () => {
    const made = await app.submit([upload(), upload()]);
    const ids = made.map((a) => a.job_id);
    const last = new Map();
    const stop = app.subscribe(ids, (event) => last.set(event.job_id, event.status));
    try {
      await waitFor(() => ids.every((id) => last.get(id) === "succeeded"), FOLLOW_MS, "both jobs");
    } finally {
      stop();
    }
  });
});

describe("tickets", () => {
  it("a client made from a ticket reads its job and nothing else", async () => {
    const mine = await app.submit(upload());
    const other = await app.submit(upload());
    const browser = new ToriClient({ baseUrl: service.baseUrl, ticket: mine.ticket });
    assert.equal((await browser.follow(mine.job_id)).status, "succeeded");
    assert.equal((await browser.job(mine.job_id)).job_id, mine.job_id);
    assert.match(await browser.result(mine.job_id, { format: "text" }), /Hello from the client/);
    const file = await fetch(browser.fileUrl(mine.job_id));
    assert.equal(file.status, 200);
    assert.match(new TextDecoder().decode(await file.arrayBuffer()), /^%PDF/);
    for (const attempt of [() => browser.job(other.job_id), () => browser.submit(upload()), () => browser.jobs().next()]) {
      await assert.rejects(attempt, (e) => e instanceof ToriError && e.status === 401 && e.code === "unauthorized");
    }
    await assert.rejects(browser.follow(other.job_id), (e) => e instanceof ToriError && e.code === "unauthorized");
  });
});

describe("errors", () => {
  it("a wrong token is a ToriError 401 with the request id", async () => {
    const stranger = new ToriClient({ baseUrl: service.baseUrl, token: "not-a-token" });
    await assert.rejects(stranger.job(randomUUID()), (e) => {
      assert.ok(e instanceof ToriError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "unauthorized");
      assert.ok(e.requestId);
      return true;
    });
  });

  it("an unknown job is not_found, over HTTP and over the socket", async () => {
    await assert.rejects(app.job(randomUUID()), (e) => e.status === 404 && e.code === "not_found");
    await assert.rejects(app.follow(randomUUID()), (e) => e instanceof ToriError && e.code === "not_found");
  });

  it("past the rate limit: 429 rate_limited with Retry-After", async () => {
    const greedy = new ToriClient({ baseUrl: service.baseUrl, token: TOKENS.greedy });
    const error = await (async () => {
      for (let i = 0; i < 200; i++) {
        try {
          await greedy.jobs({ limit: 1 }).next();
        } catch (e) {
          return e;
        }
      }
    })();
    assert.ok(error instanceof ToriError, "the limit was reached");
    assert.equal(error.status, 429);
    assert.equal(error.code, "rate_limited");
    assert.ok(error.retryAfter > 0);
  });

  it("a service that cannot be reached is a ToriError too", async () => {
    const nowhere = new ToriClient({ baseUrl: "http://127.0.0.1:9" });
    await assert.rejects(nowhere.job(randomUUID()), (e) => e instanceof ToriError && e.code === "network");
  });
});

describe("webhooks", () => {
  it("verifies a real delivery, and refuses a forged or stale one", async () => {
    const deliveries = [];
    const receiver = createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", () => {
        deliveries.push({ body: Buffer.concat(chunks), headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const callback_url = `http://127.0.0.1:${receiver.address().port}/hook`;
      const { job_id } = await app.submit(upload(), { callback_url });
      await waitFor(() => deliveries.length > 0, FOLLOW_MS, "the webhook");
      const [{ body, headers }] = deliveries;
      const event = await verifyWebhook(body, headers, WEBHOOK_SECRET);
      assert.equal(event.type, "job.succeeded");
      assert.equal(event.data.job_id, job_id);
      const forged = Buffer.from(body.toString().replace("succeeded", "failed"));
      await assert.rejects(verifyWebhook(forged, headers, WEBHOOK_SECRET), ToriError);
      const otherKey = "whsec_" + Buffer.alloc(32, 7).toString("base64");
      await assert.rejects(verifyWebhook(body, headers, otherKey), ToriError);
      const later = new Date(Date.now() + 3_600_000);
      await assert.rejects(verifyWebhook(body, headers, WEBHOOK_SECRET, later), ToriError);
      assert.equal((await verifyWebhook(body, headers, [otherKey, WEBHOOK_SECRET])).type, "job.succeeded");
    } finally {
      receiver.close();
    }
  });
});

describe("restarts", () => {
  it("follow reconnects through a restart of the service and still sees succeeded", async () => {
    const { job_id } = await app.submit(upload("tori-test-slow=3"));
    const statuses = [];
    let running;
    const isRunning = new Promise((resolve) => (running = resolve));
    const following = app.follow(job_id, {
      onUpdate: (e) => {
        statuses.push(e.status);
        if (e.status === "running") running();
      },
      signal: AbortSignal.timeout(120_000),
    });
    await Promise.race([isRunning, following]); // a follow that failed early fails here
    await service.stop(); // the running job goes back to the queue; every socket closes
    await service.start(); // same port, same database
    const end = await following;
    assert.equal(end.status, "succeeded");
    assert.ok(statuses.indexOf("running") < statuses.lastIndexOf("succeeded"), statuses.join());
  });
});
