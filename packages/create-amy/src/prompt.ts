// Questions on a terminal. Every question has a default: Enter (or the end
// of input) takes it. Lines are queued as they arrive, so answers typed or
// pasted ahead of their question are not lost.
import { createInterface } from 'node:readline'
import { TEMPLATE_NAMES, TEMPLATES, type TemplateName } from './templates.js'

export interface Answers {
  directory: string
  template: TemplateName
  docker: boolean
}

export async function ask(defaults: Answers, known: { directory: boolean, template: boolean, docker: boolean }): Promise<Answers> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  const lines: string[] = []
  let waiting: ((line: string) => void) | undefined
  let ended = false
  rl.on('line', line => {
    if (waiting) {
      const w = waiting
      waiting = undefined
      w(line)
    } else lines.push(line)
  })
  rl.on('close', () => {
    ended = true
    waiting?.('')
  })
  const question = (text: string): Promise<string> => {
    process.stdout.write(text)
    if (lines.length > 0) return Promise.resolve(lines.shift()!.trim())
    if (ended) return Promise.resolve('')
    return new Promise(resolve => (waiting = line => resolve(line.trim())))
  }
  try {
    const answers = { ...defaults }
    if (!known.directory) answers.directory = (await question(`Project directory (${defaults.directory}): `)) || defaults.directory
    if (!known.template) {
      TEMPLATE_NAMES.forEach((name, i) => process.stdout.write(`  ${i + 1}. ${name.padEnd(6)} ${TEMPLATES[name].description}\n`))
      for (;;) {
        const answer = await question(`Template (${defaults.template}): `)
        const chosen = answer === '' ? defaults.template : (TEMPLATE_NAMES[Number(answer) - 1] ?? answer)
        if ((TEMPLATE_NAMES as string[]).includes(chosen)) {
          answers.template = chosen as TemplateName
          break
        }
        process.stdout.write(`  "${answer}" is not one of ${TEMPLATE_NAMES.join(', ')}\n`)
      }
    }
    if (!known.docker) answers.docker = /^y(es)?$/i.test(await question('Add a Dockerfile? (y/N): '))
    return answers
  } finally {
    rl.close()
  }
}
