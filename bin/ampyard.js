#!/usr/bin/env node
// The CLI runs the compiled TypeScript in dist/, which `npm install` builds (the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('ampyard: dist/ is missing; run `npm install` (or `npm run build`) in the Ampyard directory first.');
  process.exit(1);
}
const { run } = await import(main.href);
await run(process.argv);
