// Sends Segment messages to the service with the real Node.js SDK (@segment/analytics-node)
// and prints, as one JSON object on stdout, what the SDK reported.
//
//   node send_segment.mjs HOST WRITE_KEY MESSAGES.json
//
// MESSAGES.json: a list of {"type": "track" | "identify", ...the SDK call's params}
// (event, userId, anonymousId, properties, traits, context, timestamp, messageId).
// Output: {"results": [{index, type, event, messageId, ok, error}] (each call's callback),
//          "responses": [{status, statusText, url, messages}] (every HTTP answer),
//          "errors": [...] (the SDK's "error" events)}.
// Exit status: 0 when every message was delivered, 1 otherwise, 2 on bad arguments.
import { readFileSync } from 'node:fs'
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, file] = process.argv.slice(2)
if (!host || !writeKey || !file) {
  console.error('usage: node send_segment.mjs HOST WRITE_KEY MESSAGES.json')
  process.exit(2)
}
const messages = JSON.parse(readFileSync(file, 'utf8'))
if (!Array.isArray(messages)) {
  console.error(`${file}: expected a JSON list of messages`)
  process.exit(2)
}

const analytics = new Analytics({
  writeKey,
  host,
  flushAt: Math.max(1, messages.length), // one batch, sent by closeAndFlush
  flushInterval: 60_000,
  maxRetries: 0, // a loopback server: report failures at once, never retry
  httpRequestTimeout: 30_000,
})

const responses = []
const errors = []
// The SDK never reads the answer's body: its http_response event carries the status and
// the request's body (counted here as the batch's size).
analytics.on('http_response', (r) => {
  let sent = null
  try {
    sent = JSON.parse(r.body).batch.length
  } catch {}
  responses.push({ status: r.status, statusText: r.statusText, url: r.url, messages: sent })
})
analytics.on('error', (e) => {
  errors.push({ code: e.code ?? null, reason: String(e.reason ?? e.message ?? e) })
})

const describe = (err) => (err == null ? null : String(err.message ?? err.reason ?? err))
const done = messages.map(
  ({ type = 'track', ...params }, index) =>
    new Promise((resolve) => {
      const callback = (err, ctx) =>
        resolve({
          index,
          type,
          event: params.event ?? null,
          messageId: ctx?.event?.messageId ?? null,
          ok: err == null,
          error: describe(err),
        })
      if (type === 'track') analytics.track(params, callback)
      else if (type === 'identify') analytics.identify(params, callback)
      else resolve({ index, type, event: null, messageId: null, ok: false, error: 'unsupported type' })
    }),
)

await analytics.closeAndFlush({ timeout: 60_000 })
const results = await Promise.all(done)
process.stdout.write(JSON.stringify({ results, responses, errors }) + '\n')
process.exit(results.every((r) => r.ok) && errors.length === 0 ? 0 : 1)
