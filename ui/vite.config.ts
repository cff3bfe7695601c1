import { svelte } from "@sveltejs/vite-plugin-svelte";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

// A gzip copy beside each asset: the server sends it to browsers that accept gzip (aiohttp's
// FileResponse picks `name.gz` itself), a third of the bytes on the wire.
function precompress(): Plugin {
  return {
    name: "plait-precompress",
    apply: "build",
    writeBundle(options) {
      const dir = join(options.dir ?? "", "assets");
      for (const name of readdirSync(dir)) {
        if (!/\.(js|css|svg)$/.test(name)) continue;
        const raw = readFileSync(join(dir, name));
        if (raw.length > 1024) writeFileSync(join(dir, `${name}.gz`), gzipSync(raw, { level: 9 }));
      }
    },
  };
}

// The bundle is package data of the `plait` wheel: the hub server serves it at /ui.
export default defineConfig({
  base: "/ui/",
  plugins: [svelte(), precompress()],
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
