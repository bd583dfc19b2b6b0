#!/usr/bin/env node
// Runs the TypeScript CLI in this process with tsx's loader registered (no second Node process
// just to add a flag); the built package's launcher runs the JavaScript instead.
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { register } from 'tsx/esm/api'

register()
const here = dirname(fileURLToPath(import.meta.url))
await import(pathToFileURL(join(here, '..', 'src', 'cli', 'bin.ts')).href)
