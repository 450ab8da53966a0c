// Loading the user's handler module in a worker, and the errors that come of
// it. Those cross to the main thread as piscina's task rejection, which keeps
// an Error's message and cause but drops its `code` and other fields: so the
// worker throws a plain StartFailure object and the main thread revives it.
import { execFileSync } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { ServerError, type ServerErrorCode } from './errors.js'
import type { Handler } from './handler-types.js'

const HOOKS = ['setup', 'open', 'data', 'drain', 'end', 'timeout', 'close', 'message'] as const

/** Imports the handler module at `url` (a file URL) and checks its shape. */
export async function loadHandler(url: string): Promise<Handler> {
  const path = fileURLToPath(url)
  let mod: Record<string, unknown>
  try {
    // A missing file is reported by fs (ENOENT), not by whichever module
    // loader is installed (their "not found" errors differ, some lack a code).
    await stat(path)
    mod = await importModule(url, path)
  } catch (err) {
    throw handlerLoadError(path, err)
  }
  // ESM default export, CommonJS module.exports, or CommonJS compiled from
  // `export default` (one more level of default).
  let handler = (mod['default'] ?? mod) as Record<string, unknown>
  if (isObject(handler) && isObject(handler['default']) && !HOOKS.some(hook => hook in handler)) handler = handler['default'] as Record<string, unknown>
  if (!isObject(handler)) {
    throw new ServerError('ERR_INVALID_HANDLER', `${path} must export a handler object (export default defineHandler({...}) or module.exports = defineHandler({...}))`)
  }
  for (const hook of HOOKS) {
    const fn = handler[hook]
    if (fn !== undefined && typeof fn !== 'function') throw new ServerError('ERR_INVALID_HANDLER', `${path}: handler.${hook} must be a function, got ${typeof fn}`)
  }
  if (!HOOKS.some(hook => typeof handler[hook] === 'function')) {
    throw new ServerError('ERR_INVALID_HANDLER', `${path} exports no handler hooks (one of ${HOOKS.join(', ')}); it exports: ${Object.keys(handler).join(', ') || 'nothing'}`)
  }
  return handler as Handler
}

const TYPESCRIPT = /\.[cm]?tsx?$/

/**
 * A TypeScript handler loads wherever the main thread's loader works in
 * worker threads (Node's type stripping flags, `--require` hooks: workers
 * inherit execArgv). tsx does not register its hooks in worker threads on
 * Node 20, so when the plain import does not know the extension, tsx's
 * own `tsImport()` API (which works in a worker) loads it, if installed.
 */
async function importModule(url: string, path: string): Promise<Record<string, unknown>> {
  try {
    return (await import(url)) as Record<string, unknown>
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !TYPESCRIPT.test(path)) throw err
    let tsImport: ((specifier: string, parent: string) => Promise<unknown>) | undefined
    try {
      const specifier = 'tsx/esm/api' // a variable: no compile-time dependency on tsx
      tsImport = ((await import(specifier)) as { tsImport?: typeof tsImport }).tsImport
    } catch {
      // not installed: the original error, with a hint in its message
    }
    if (tsImport === undefined) {
      throw Object.assign(err as Error, { message: `${(err as Error).message} (a TypeScript handler needs tsx installed, or Node's own type stripping)` })
    }
    return (await tsImport(url, url)) as Record<string, unknown>
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/** ERR_HANDLER_LOAD with the path, the cause, its code and, for syntax errors, file:line. */
function handlerLoadError(path: string, err: unknown): ServerError {
  const cause = err instanceof Error ? err : new Error(String(err))
  const code = (cause as { code?: unknown }).code
  const location = cause instanceof SyntaxError ? syntaxErrorLocation(cause, path) : undefined
  const details = [typeof code === 'string' ? code : undefined, location ? `at ${location}` : undefined].filter(Boolean).join(', ')
  const error = new ServerError('ERR_HANDLER_LOAD', `could not load the handler ${path}: ${cause.name}: ${cause.message}${details ? ` (${details})` : ''}`, { cause })
  return Object.assign(error, { path, location })
}

/**
 * Where a syntax error is. CommonJS puts "file:line" first in the stack; an
 * ES module's SyntaxError (Node 20) carries no location at all, so the file
 * is checked again with `node --check`, which prints it (only on this
 * failure path).
 */
function syntaxErrorLocation(err: SyntaxError, path: string): string | undefined {
  const fromStack = /^((?:file:\/\/)?\/[^\n]*:\d+)\n/.exec(err.stack ?? '')
  if (fromStack) return fromStack[1]
  if (!/\.(m|c)?js$/.test(path)) return undefined
  try {
    execFileSync(process.execPath, ['--check', path], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 })
  } catch (checkErr) {
    const stderr = String((checkErr as { stderr?: unknown }).stderr ?? '')
    const found = /^((?:file:\/\/)?\/[^\n]*:\d+)\n/.exec(stderr)
    if (found) return found[1]
  }
  return undefined
}

// ---- crossing to the main thread ---------------------------------------------

interface StartFailure {
  amyStartFailure: true
  code: ServerErrorCode
  message: string
  path?: string
  location?: string
  cause?: { name: string; message: string; code?: unknown; stack?: string }
}

/** What the worker throws when it cannot start: every field survives structured clone. */
export function toStartFailure(err: unknown): unknown {
  if (!(err instanceof ServerError)) return err
  const { path, location } = err as ServerError & { path?: string; location?: string }
  const cause = err.cause instanceof Error ? err.cause : undefined
  const failure: StartFailure = { amyStartFailure: true, code: err.code, message: err.message }
  if (path !== undefined) failure.path = path
  if (location !== undefined) failure.location = location
  if (cause) failure.cause = { name: cause.name, message: cause.message, code: (cause as { code?: unknown }).code, stack: cause.stack }
  return failure
}

/** On the main thread: a StartFailure back into a ServerError (anything else as it is). */
export function fromStartFailure(value: unknown): unknown {
  if (!isObject(value) || value['amyStartFailure'] !== true) return value
  const failure = value as unknown as StartFailure
  let cause: Error | undefined
  if (failure.cause) {
    cause = new Error(failure.cause.message)
    cause.name = failure.cause.name
    if (failure.cause.stack !== undefined) cause.stack = failure.cause.stack
    if (failure.cause.code !== undefined) Object.assign(cause, { code: failure.cause.code })
  }
  const error = new ServerError(failure.code, failure.message, cause ? { cause } : undefined)
  if (failure.path !== undefined) Object.assign(error, { path: failure.path })
  if (failure.location !== undefined) Object.assign(error, { location: failure.location })
  return error
}
