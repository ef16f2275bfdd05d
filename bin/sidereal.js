#!/usr/bin/env node
// The `sidereal` command: the compiled CLI (npm ci builds it through `prepare`).
import { main } from '../dist/server/cli/main.js';

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
