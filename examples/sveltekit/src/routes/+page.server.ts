import { fail } from "@sveltejs/kit";
import { ToriError } from "@tori-ingest/client";
import { tori } from "$lib/server/tori";
import type { Actions } from "./$types";

export const actions = {
  /** Submit the upload with the app's token; the browser gets the job and its ticket only. */
  default: async ({ request }) => {
    const file = (await request.formData()).get("file");
    if (!(file instanceof File) || file.size === 0) {
      return fail(400, { error: "choose a PDF to upload" });
    }
    try {
      const { job_id, ticket } = await tori().submit(file);
      return { job_id, ticket };
    } catch (error) {
      if (!(error instanceof ToriError)) throw error;
      const status = error.status >= 400 && error.status < 500 ? error.status : 502;
      return fail(status, { error: `${error.code}: ${error.message}` });
    }
  },
} satisfies Actions;
