// Runs `ampyard <args>` from the TypeScript sources, for tests that need the server as its own process.
import { run } from '../../src/cli/main.js';

await run(process.argv);
