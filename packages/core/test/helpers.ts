import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Notification, Poller } from '@amy/core'

/** Open fds of this process (Linux: /proc/self/fd; the listing's own fd cancels out). */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

/**
 * Waits (a few rounds of `poller.wait`) until a notification for `id`
 * arrives, tolerating spurious and unrelated notifications, as mio's test
 * helper does. Returns it, or undefined after `rounds` waits.
 */
export function waitFor(poller: Poller, id: number, timeoutMs = 1000, rounds = 10): Notification | undefined {
  for (let i = 0; i < rounds; i++) {
    const hit = poller.wait(timeoutMs / rounds).find(n => n.id === id)
    if (hit) return hit
  }
  return undefined
}

export const fixture = (name: string): string => join(__dirname, 'fixtures', name)

const exits = new WeakMap<Worker, Promise<number>>()

/** Starts a worker on a fixture; the test ends it (terminate) and awaits exit. */
export function startWorker(name: string, workerData?: unknown): Worker {
  const worker = new Worker(fixture(name), { workerData })
  exits.set(worker, new Promise(resolve => worker.once('exit', resolve)))
  return worker
}

/**
 * The exit code of a worker from startWorker. Listening from the start
 * matters: when a worker exits before its last message or error was
 * delivered, Node emits that message or 'error' and then 'exit' in one
 * synchronous go, so a listener added after awaiting the message misses it.
 */
export function exitOf(worker: Worker): Promise<number> {
  const exit = exits.get(worker)
  if (!exit) throw new Error('exitOf: not a worker from startWorker')
  return exit
}

export function once<T = unknown>(worker: Worker, event: 'message' | 'exit' | 'error'): Promise<T> {
  return new Promise((resolve, reject) => {
    worker.once(event, resolve as (v: unknown) => void)
    if (event !== 'error') worker.once('error', reject)
  })
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}
