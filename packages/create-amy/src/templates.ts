/** The templates create-amy offers, in the order a prompt lists them. */
export const TEMPLATES = {
  echo: { description: 'A multithreaded TCP echo server', port: 7000, amy: ['@amy/server'], env: '' },
  chat: {
    description: 'A multithreaded line chat server with rooms and nicknames',
    port: 7001,
    amy: ['@amy/server', '@amy/core'],
    env: ', `STATS_PORT` turns on the HTTP stats endpoint',
  },
  proxy: {
    description: 'A multithreaded TCP proxy',
    port: 7002,
    amy: ['@amy/server'],
    env: ', `UPSTREAM_HOST` and `UPSTREAM_PORT` (default 127.0.0.1:6379) say where to forward',
  },
} as const

export type TemplateName = keyof typeof TEMPLATES
export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[]

export const isTemplate = (name: string): name is TemplateName => Object.hasOwn(TEMPLATES, name)
