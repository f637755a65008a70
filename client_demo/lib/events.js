// Client-side events in the posthog/Segment way, with nothing a shopper does lost:
// - every event gets a UUID message_id (the server de-duplicates on it, so a retry is
//   harmless) and is written to the IndexedDB outbox (outbox.js) before it is sent;
// - it leaves the outbox only when the service answered "accepted" or "duplicate" for it;
//   one it rejected for good goes to the outbox's "rejected" store with the reason;
// - 429, 5xx, a lost connection or being offline: retried with exponential backoff (at least
//   Retry-After), at once when the browser comes back online, and after a reload;
// - batches flush at `flushAt` events, every `flushMs`, and on page hide (keepalive);
// - each event is sent with the session token it was logged under (a kiosk's previous
//   shopper's events still go out after the next shopper's session started).
// `record()` is for what the shopper does (cart, order): it says whether the event is stored
// on the server or only durably queued on this device.
import { uuid } from './api.js';
import { Outbox } from './outbox.js';

const MAX_BATCH = 500; // the events API accepts at most this many per request
const BACKOFF_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
// Logged by the page itself on the photo path: the only ones the bound may drop.
const DROPPABLE = new Set(['Try-On Started', 'Frame Applied', 'Shade Applied', 'Try-On Dwell']);
const RETRY = (s) => s === 408 || s === 425 || s === 429 || s >= 500;

export class EventQueue {
  constructor(api, { flushAt = 20, flushMs = 2000, queueMax = 1000 } = {}) {
    this.api = api;
    this.url = api.path('events');
    Object.assign(this, { flushAt, flushMs, queueMax });
    this.outbox = new Outbox();
    this.queue = []; // records {id, seq, token, event, persisted, sending} not answered yet
    this.waiters = new Map(); // message_id -> resolve(status), for record()
    Object.assign(this, { dropped: 0, sent: 0, failed: 0, rejected: 0, retries: 0 });
    this.batchMax = MAX_BATCH;
    this.base = {};
    this.inflight = null;
    this.timer = null;
    this.retryAt = 0;
    this.failures = 0;
    this.lastResult = null;
    this.consent = false;
    this.measurements = null; // face measurements, sent only while consent is true
    this.seq = Date.now() * 1000;
    // What an earlier page (a reload, a crash, a kiosk restart) left in the outbox goes first.
    this.loaded = this.outbox.all().then((left) => {
      const known = new Set(this.queue.map((r) => r.id));
      this.queue.unshift(...left.filter((r) => !known.has(r.id)).map((r) => ({ ...r, persisted: true })));
      if (this.queue.length) this.schedule(0);
    }).catch(() => {});
    addEventListener('online', () => { this.retryAt = 0; this.flush(); });
    // Page hide is the last reliable moment on mobile; keepalive lets the request outlive the
    // page (and what it does not deliver stays in the outbox for the next visit).
    addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.flush({ unloading: true });
    });
    addEventListener('pagehide', () => this.flush({ unloading: true }));
  }

  get durable() { return this.outbox.durable; }

  // Fields every event carries (anonymous_id, session_id, channel, store_id, kiosk_id).
  identify(base) { this.base = { ...base }; }

  track(event, properties = {}, extra = {}) {
    const e = {
      message_id: uuid(),
      event,
      timestamp: new Date().toISOString(),
      ...this.base,
      ...extra,
      // consent travels with every event: the server keeps measurements only when it is true
      properties: {
        consent: this.consent,
        ...(this.consent && this.measurements ? this.measurements : {}),
        ...clean(properties),
      },
      context: {
        library: { name: 'tryon-demo', version: '2' },
        page: { path: location.pathname, search: location.search },
        user_agent: navigator.userAgent,
        screen: { width: screen.width, height: screen.height },
      },
    };
    const rec = { id: e.message_id, seq: (this.seq += 1), token: this.api.key, event: e };
    const entry = { ...rec, persisted: false, sending: false };
    entry.saved = this.outbox.put(rec).then((durable) => { entry.persisted = durable; return durable; });
    this.queue.push(entry);
    this.bound();
    if (this.queue.length >= this.flushAt) entry.saved.then(() => this.flush());
    else this.schedule(this.flushMs);
    return e.message_id;
  }

  // A shopper's action: resolves {id, status} with status 'stored' (the service has it),
  // 'queued' (on this device's disk, sent when the service can be reached), 'pending' (in
  // memory only: no IndexedDB here) or 'rejected'.
  async record(event, properties = {}, { waitMs = 2500 } = {}) {
    const id = this.track(event, properties);
    const entry = this.queue.find((r) => r.id === id);
    const durable = await entry.saved;
    const answered = new Promise((resolve) => this.waiters.set(id, resolve));
    this.flush();
    const status = await Promise.race([answered, new Promise((r) => setTimeout(r, waitMs, null))]);
    this.waiters.delete(id);
    return { id, status: status || (durable ? 'queued' : 'pending') };
  }

  // Over queueMax: the oldest automatic events go; a shopper's actions are never dropped.
  bound() {
    let over = this.queue.length - this.queueMax;
    for (let i = 0; over > 0 && i < this.queue.length; ) {
      const r = this.queue[i];
      if (!r.sending && DROPPABLE.has(r.event.event)) {
        this.queue.splice(i, 1);
        this.outbox.remove([r.id]).catch(() => {});
        this.dropped += 1;
        over -= 1;
      } else i += 1;
    }
  }

  schedule(ms) {
    if (this.timer) return;
    const wait = Math.max(ms, this.retryAt - Date.now());
    this.timer = setTimeout(() => { this.timer = null; this.flush(); }, wait);
  }

  // Sends what is due, one request at a time; never waits out a backoff (a timer does).
  async flush({ unloading = false } = {}) {
    await this.loaded;
    while (this.inflight && !unloading) {
      await this.inflight;
      if (Date.now() < this.retryAt) return null;
    }
    clearTimeout(this.timer);
    this.timer = null;
    const ready = this.queue.filter((r) => !r.sending);
    if (!ready.length) return this.inflight;
    if (navigator.onLine === false) return null; // the 'online' event sends them
    if (Date.now() < this.retryAt && !unloading) {
      this.schedule(0);
      return null;
    }
    const token = ready[0].token;
    const batch = ready.filter((r) => r.token === token).slice(0, this.batchMax);
    for (const r of batch) r.sending = true;
    const sending = this.send(batch, token, unloading)
      .catch(() => this.backoff(null))
      .finally(() => { for (const r of batch) r.sending = false; });
    if (unloading && this.inflight) return sending;
    this.inflight = sending.finally(() => { this.inflight = null; });
    await this.inflight;
    if (this.queue.some((r) => !r.sending)) {
      if (Date.now() >= this.retryAt && this.queue.length >= this.flushAt) return this.flush();
      this.schedule(this.flushMs);
    }
    return null;
  }

  post(batch, token, keepalive) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const body = JSON.stringify({ batch: batch.map((r) => r.event) });
    return fetch(this.url, { method: 'POST', headers, body, keepalive: keepalive && body.length < 60_000 });
  }

  async send(batch, token, unloading) {
    if (!token) token = (await this.api.ensureSession(), this.api.key);
    let res = await this.post(batch, token, unloading);
    if (res.status === 401 && !unloading) {
      // That session expired: the page's current one (renewed if it was that one) sends it.
      await this.api.ensureSession({ renew: token === this.api.key });
      token = this.api.key;
      for (const r of batch) r.token = token;
      res = await this.post(batch, token, false);
    }
    if (res.status === 413 && batch.length > 1) {
      this.batchMax = Math.max(1, batch.length >> 1);
      this.schedule(0);
      return;
    }
    if (RETRY(res.status)) {
      this.backoff(Number(res.headers.get('Retry-After')));
      return;
    }
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) { // refused as a whole for good (400, 403, 422...): set aside, with why
      await this.settle([], batch.map((r) => ({ r, error: body?.error || { status: res.status } })));
      return;
    }
    this.lastResult = body;
    const byId = new Map(batch.map((r) => [r.id, r]));
    const ok = [];
    const bad = [];
    for (const res1 of body?.results || []) {
      const r = byId.get(res1.message_id) ?? batch[res1.index];
      if (!r) continue;
      if (res1.status === 'accepted' || res1.status === 'duplicate') ok.push(r);
      else if (res1.status === 'rejected') bad.push({ r, error: res1.error });
    }
    await this.settle(ok, bad);
    this.failures = 0;
    this.retryAt = 0;
  }

  async settle(ok, bad) {
    const gone = new Set([...ok.map((r) => r.id), ...bad.map((b) => b.r.id)]);
    this.queue = this.queue.filter((r) => !gone.has(r.id));
    this.sent += ok.length;
    this.rejected += bad.length;
    for (const r of ok) this.waiters.get(r.id)?.('stored');
    for (const { r } of bad) this.waiters.get(r.id)?.('rejected');
    await Promise.all([
      this.outbox.remove(ok.map((r) => r.id)),
      this.outbox.reject(bad.map(({ r, error }) => ({ id: r.id, seq: r.seq, event: r.event, error }))),
    ]).catch(() => {});
  }

  backoff(retryAfterS) {
    this.failed += 1;
    this.failures += 1;
    this.retries += 1;
    const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** (this.failures - 1)) * (0.8 + 0.4 * Math.random());
    const wait = Number.isFinite(retryAfterS) && retryAfterS > 0 ? Math.max(exp, retryAfterS * 1000) : exp;
    this.retryAt = Date.now() + wait;
    clearTimeout(this.timer);
    this.timer = null;
    this.schedule(wait);
  }
}

// Drop null/undefined fields and round money to cents (the API stores Decimal(12, 2)).
function clean(props) {
  const out = {};
  for (const [k, v] of Object.entries(props)) {
    if (v == null) continue;
    out[k] = (k === 'price' || k === 'revenue' || k === 'total') && typeof v === 'number' ? Math.round(v * 100) / 100 : v;
  }
  return out;
}
