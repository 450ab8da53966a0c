#!/usr/bin/env node
// npm create amy@latest [directory] -- [--template echo|chat|proxy] [--name NAME] [--docker] [--yes] [--force]
import { parseArgs } from 'node:util'
import { relative } from 'node:path'
import { create } from './create.js'
import { CreateAmyError } from './errors.js'
import { ask } from './prompt.js'
import { TEMPLATE_NAMES, TEMPLATES, type TemplateName } from './templates.js'

const USAGE = `Usage: npm create amy@latest [directory] -- [options]
       npx create-amy [directory] [options]

Creates a TypeScript project with a multithreaded TCP server on @amy/server.

Options:
  -t, --template NAME  ${TEMPLATE_NAMES.map(n => `${n} (${TEMPLATES[n].description.toLowerCase()})`).join(', ')}; default echo
  -n, --name NAME      the package name; default: the directory's name
      --docker         add a Dockerfile
  -y, --yes            ask nothing: take the defaults for what is not given
  -f, --force          write into a directory that is not empty
  -h, --help           this text
On a terminal, what is not given is asked for (Enter takes the default).`

async function main(argv: string[]): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        template: { type: 'string', short: 't' },
        name: { type: 'string', short: 'n' },
        docker: { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        force: { type: 'boolean', short: 'f' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    throw new CreateAmyError('ERR_INVALID_ARG', `${(err as Error).message}\n\n${USAGE}`)
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    console.log(USAGE)
    return
  }
  if (positionals.length > 1) throw new CreateAmyError('ERR_INVALID_ARG', `one directory, not ${positionals.length}: ${positionals.join(' ')}\n\n${USAGE}`)
  let directory = positionals[0] ?? 'my-amy-server'
  let template = (values.template ?? 'echo') as TemplateName
  let docker = values.docker === true
  if (values.yes !== true && process.stdin.isTTY && process.stdout.isTTY) {
    const answers = await ask({ directory, template, docker }, {
      directory: positionals[0] !== undefined,
      template: values.template !== undefined,
      docker: values.docker !== undefined,
    })
    ;({ directory, template, docker } = answers)
  }
  const created = create({ directory, template, docker, force: values.force === true, ...(values.name !== undefined ? { name: values.name } : {}) })
  const where = relative(process.cwd(), created.directory) || '.'
  console.log(`Created ${created.name} (template ${created.template}) in ${where}: ${created.files.length} files.

Next:
  cd ${where}
  npm install
  npm start        # build and run: prints the address it listens on
  npm test         # an end-to-end test of the server
  npm run dev      # TypeScript without a build step, restarts on changes`)
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CreateAmyError) {
    console.error(`create-amy: ${err.message} (${err.code})`)
  } else {
    console.error(err)
  }
  process.exitCode = 1
})
