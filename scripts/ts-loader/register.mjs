// Runs this checkout's TypeScript as it is: `node --import ./scripts/ts-loader/register.mjs file.ts`.
// The tests (.taprc), `npm start` and the kernels the tests start use it; it does only what
// this repository's sources need (ADR 0115): a relative `./x.js` written in a `.ts` file means
// `./x.ts`, and a `.ts` file is transpiled by esbuild (types erased, nothing else changed).
// Everything else — packages, JSON, `.mjs` — is Node's own resolution and loading. Stack traces
// point into the TypeScript (inline source maps). Partners' plugins run under tsx (the SDK's
// `trellis-plugin test` and `dev`), which also reads a project's tsconfig.
import { register } from 'node:module'

process.setSourceMapsEnabled(true)
register('./hooks.mjs', import.meta.url)
