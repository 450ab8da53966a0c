// Writes a new project: templates/base plus templates/<name>, with the
// placeholders ({{name}}, {{port}}, ...) filled in.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { CreateAmyError } from './errors.js'
import { validateName } from './name.js'
import { isTemplate, TEMPLATE_NAMES, TEMPLATES, type TemplateName } from './templates.js'

export interface CreateOptions {
  /** Where to create the project (made if missing). */
  directory: string
  /** The package name; default: the directory's name. */
  name?: string
  template?: TemplateName | string
  /** Add a Dockerfile and .dockerignore. */
  docker?: boolean
  /** Write into a non-empty directory (files of the same name are replaced). */
  force?: boolean
}

export interface Created {
  directory: string
  name: string
  template: TemplateName
  files: string[]
}

const templatesRoot = join(__dirname, '..', 'templates')
/** npm drops .gitignore from published tarballs, so the templates store these without the dot. */
const RENAMED: Record<string, string> = { gitignore: '.gitignore', dockerignore: '.dockerignore' }
const DOCKER_FILES = new Set(['Dockerfile', '.dockerignore'])

/** The version of @amy/* a new project depends on: create-amy is released with them, at the same version. */
export function amyVersion(): string {
  return (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap(entry => {
    const path = join(dir, entry)
    return statSync(path).isDirectory() ? walk(path).map(p => join(entry, p)) : [entry]
  })
}

export function create(options: CreateOptions): Created {
  const template = options.template ?? 'echo'
  if (!isTemplate(template)) {
    throw new CreateAmyError('ERR_UNKNOWN_TEMPLATE', `unknown template "${template}": choose one of ${TEMPLATE_NAMES.join(', ')}`)
  }
  const directory = resolve(options.directory)
  const name = validateName(options.name ?? basename(directory))
  if (existsSync(directory)) {
    if (!statSync(directory).isDirectory()) throw new CreateAmyError('ERR_DIR_NOT_EMPTY', `${directory} exists and is not a directory`)
    const entries = readdirSync(directory).filter(e => e !== '.git')
    if (entries.length > 0 && options.force !== true) {
      throw new CreateAmyError('ERR_DIR_NOT_EMPTY', `${directory} is not empty (${entries.length} entries); choose another directory or pass --force to write into it`)
    }
  }
  const t = TEMPLATES[template]
  const version = amyVersion()
  const values: Record<string, string> = {
    name,
    template,
    description: t.description,
    port: String(t.port),
    dependencies: JSON.stringify(Object.fromEntries(t.amy.map(dep => [dep, `^${version}`])), null, 4).replace(/\n}$/, '\n  }'),
    tsxVersion: '^4.20.0',
    envNote: t.env,
    dockerRow: options.docker === true ? '\n| `Dockerfile`, `.dockerignore` | `docker build -t ' + name.replace(/^@/, '').replace('/', '-') + ' .` (after `npm install`: it copies package-lock.json) builds a production image |' : '',
  }
  const fill = (text: string): string => text.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole)
  values.about = fill(readFileSync(join(templatesRoot, template, 'about.md'), 'utf8').trim())

  // The template's own files win over base's of the same path.
  const files = new Map<string, string>()
  for (const dir of [join(templatesRoot, 'base'), join(templatesRoot, template)]) {
    for (const path of walk(dir)) {
      if (path === 'about.md') continue
      const target = join(dirname(path), RENAMED[basename(path)] ?? basename(path))
      files.set(target, join(dir, path))
    }
  }
  const written: string[] = []
  for (const [target, source] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    if (DOCKER_FILES.has(target) && options.docker !== true) continue
    const out = join(directory, target)
    mkdirSync(dirname(out), { recursive: true })
    writeFileSync(out, fill(readFileSync(source, 'utf8')))
    written.push(relative(directory, out))
  }
  return { directory, name, template, files: written }
}
