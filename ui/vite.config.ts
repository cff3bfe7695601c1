import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vitest/config";

// The bundle is package data of the `plait` wheel: the hub server serves it at /ui.
export default defineConfig({
  base: "/ui/",
  plugins: [svelte()],
  build: {
    outDir: "../core/src/plait/server/ui_dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
