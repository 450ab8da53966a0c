// npm's rules for a new package name (those of validate-npm-package-name
// for new packages), so a generated package.json is one npm accepts.
import { builtinModules } from 'node:module'
import { CreateAmyError } from './errors.js'

const EXCLUDED = new Set(['node_modules', 'favicon.ico'])

/** Why `name` cannot be an npm package name, or undefined if it can. */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty'
  if (name.length > 214) return 'it is longer than 214 characters'
  if (name !== name.trim()) return 'it has leading or trailing spaces'
  if (name.startsWith('.') || name.startsWith('_')) return 'it starts with "." or "_"'
  if (name !== name.toLowerCase()) return 'it has capital letters'
  if (EXCLUDED.has(name)) return `"${name}" is reserved`
  if (builtinModules.includes(name)) return `"${name}" is a Node.js core module`
  const scoped = /^@([^/]+)\/([^/]+)$/.exec(name)
  const parts = scoped ? [scoped[1]!, scoped[2]!] : [name]
  if (!scoped && name.includes('/')) return 'it has a "/" but is not a scoped name (@scope/name)'
  for (const part of parts) {
    if (part.startsWith('.') || part.startsWith('_')) return 'a part of it starts with "." or "_"'
    if (encodeURIComponent(part) !== part) return 'it has characters that are not URL-safe (only a-z 0-9 - . _ ~ and one @scope/)'
    if (/[~'!()*]/.test(part)) return `it has one of ~'!()*`
  }
  return undefined
}

export function validateName(name: string): string {
  const problem = nameProblem(name)
  if (problem !== undefined) {
    throw new CreateAmyError('ERR_INVALID_NAME', `"${name}" cannot be an npm package name: ${problem}. Try a lowercase name like my-server.`)
  }
  return name
}
