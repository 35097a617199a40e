import adapter from "@sveltejs/adapter-node";
import { vitePreprocess } from "@sveltejs/vite-plugin-svelte";

/** @type {import('@sveltejs/kit').Config} */
export default {
  preprocess: vitePreprocess(),
  // `node build` serves it: PORT, HOST and ORIGIN are read at start (see README.md).
  kit: { adapter: adapter() },
};
