// npm start: a multithreaded TCP proxy on $HOST:$PORT (default
// 127.0.0.1:7002) forwarding every connection to
// $UPSTREAM_HOST:$UPSTREAM_PORT (UPSTREAM_PORT required; UPSTREAM_HOST
// defaults to 127.0.0.1 and is resolved once, at start), with $THREADS
// workers (default: one per core).
//
// TLS: TLS_KEY and TLS_CERT (PEM files) terminate TLS from clients;
// UPSTREAM_TLS=1 speaks TLS to the upstream, verified against UPSTREAM_CA
// (a PEM file; default: node's root certificates) and UPSTREAM_SERVERNAME
// (default: UPSTREAM_HOST).
import { readFileSync } from 'node:fs'
import { lookup } from 'node:dns/promises'
import { join } from 'node:path'
import { createServer, type ServerTlsOptions } from '@amy/server'
import type { Upstream } from './handler.js'

function fail(message: string): never {
  console.error(`proxy: ${message}`)
  process.exit(1)
}

async function main(): Promise<void> {
  const host = process.env.HOST ?? '127.0.0.1'
  const port = Number(process.env.PORT ?? 7002)
  const threads = process.env.THREADS ? Number(process.env.THREADS) : undefined

  const upstreamHost = process.env.UPSTREAM_HOST || '127.0.0.1'
  const upstreamPortText = process.env.UPSTREAM_PORT
  if (!upstreamPortText) fail('UPSTREAM_PORT is required (and UPSTREAM_HOST, default 127.0.0.1): where to forward connections')
  const upstreamPort = Number(upstreamPortText)
  if (!Number.isInteger(upstreamPort) || upstreamPort < 1 || upstreamPort > 65535) fail(`UPSTREAM_PORT must be a port number, got ${upstreamPortText}`)
  let address: string
  try {
    address = (await lookup(upstreamHost)).address
  } catch (err) {
    fail(`cannot resolve UPSTREAM_HOST ${upstreamHost}: ${(err as Error).message}`)
  }
  const label = `${upstreamHost}:${upstreamPort}`
  const upstream: Upstream = { host: address, port: upstreamPort, label }
  if (process.env.UPSTREAM_TLS === '1') {
    const ca = process.env.UPSTREAM_CA
    upstream.tls = { servername: process.env.UPSTREAM_SERVERNAME ?? upstreamHost, ...(ca && { ca: readFileSync(ca, 'utf8') }) }
  }
  const { TLS_KEY: key, TLS_CERT: cert } = process.env
  if (!key !== !cert) fail('TLS_KEY and TLS_CERT go together (PEM files)')
  const tls: ServerTlsOptions | undefined = key && cert ? { key: readFileSync(key), cert: readFileSync(cert) } : undefined

  const server = createServer({ handler: join(__dirname, 'handler.js'), threads, handlerData: upstream })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void server.close({ timeout: 2000 }).then(() => console.log('proxy closed'))
    })
  }
  let listening
  try {
    listening = await server.listen({ host, port, backlog: 4096, tls })
  } catch (err) {
    fail(`failed to start: ${(err as Error).message}`)
  }
  console.log(`proxy listening on ${listening.address}:${listening.port} -> ${label}${tls ? ' (TLS terminated)' : ''}${upstream.tls ? ' (TLS upstream)' : ''}`)
}

void main()
