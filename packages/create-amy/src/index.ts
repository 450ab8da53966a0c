// create-amy as a library: what the CLI (dist/cli.js) runs.
export { create, amyVersion, type CreateOptions, type Created } from './create.js'
export { validateName, nameProblem } from './name.js'
export { CreateAmyError, type CreateAmyErrorCode } from './errors.js'
export { TEMPLATES, TEMPLATE_NAMES, type TemplateName } from './templates.js'
