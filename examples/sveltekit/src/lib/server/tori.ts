// The service as this app's server sees it: with the API token, which never leaves the server
// ($lib/server cannot be imported by code that runs in the browser).
import { env } from "$env/dynamic/private";
import { ToriClient } from "@tori-ingest/client";

export function tori(): ToriClient {
  if (!env.TORI_URL || !env.TORI_TOKEN) {
    throw new Error("set TORI_URL and TORI_TOKEN (see README.md)");
  }
  return new ToriClient({ baseUrl: env.TORI_URL, token: env.TORI_TOKEN });
}
