// Client-side event batching in the posthog/Segment way: every event gets a UUID message_id
// (the server de-duplicates on it, so a retried batch is harmless), the queue is bounded and
// drops the oldest rather than blocking, and it flushes by count, by time and on page hide.
import { uuid } from './api.js';

const MAX_BATCH = 500; // the events API accepts at most this many per request

export class EventQueue {
  constructor(api, { flushAt = 20, flushMs = 2000, queueMax = 200 } = {}) {
    this.api = api;
    this.url = api.path('events');
    this.flushAt = flushAt;
    this.flushMs = flushMs;
    this.queueMax = queueMax;
    this.queue = [];
    this.dropped = 0;
    this.sent = 0;
    this.failed = 0;
    this.base = {};
    this.inflight = null;
    this.timer = null;
    this.lastResult = null;
    this.consent = false;
    this.measurements = null; // face measurements, sent only while consent is true
    // Page hide is the last reliable moment on mobile; keepalive lets the request outlive the page.
    addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.flush({ unloading: true });
    });
    addEventListener('pagehide', () => this.flush({ unloading: true }));
  }

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
        library: { name: 'tryon-demo', version: '1' },
        page: { path: location.pathname, search: location.search },
        user_agent: navigator.userAgent,
        screen: { width: screen.width, height: screen.height },
      },
    };
    this.queue.push(e);
    if (this.queue.length > this.queueMax) {
      const over = this.queue.length - this.queueMax;
      this.queue.splice(0, over);
      this.dropped += over;
    }
    if (this.queue.length >= this.flushAt) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.flushMs);
    return e.message_id;
  }

  async flush({ unloading = false } = {}) {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.queue.length) return this.inflight;
    if (this.inflight && !unloading) {
      await this.inflight; // one request at a time keeps ordering and avoids request storms
      return this.flush();
    }
    const batch = this.queue.splice(0, MAX_BATCH);
    const body = { batch };
    this.inflight = this.api
      .post(this.url, body, { keepalive: unloading })
      .then((res) => {
        this.lastResult = res;
        this.sent += batch.length;
      })
      .catch((err) => {
        this.failed += 1;
        // Requeue on network/server trouble (message ids make the retry safe), but not on a
        // 4xx: a batch the server rejected outright would be rejected again.
        if (!(err.status >= 400 && err.status < 500)) {
          this.queue.unshift(...batch.slice(0, Math.max(0, this.queueMax - this.queue.length)));
          if (!this.timer) this.timer = setTimeout(() => this.flush(), this.flushMs * 2);
        }
      })
      .finally(() => { this.inflight = null; });
    await this.inflight;
    if (this.queue.length >= this.flushAt) return this.flush();
    return null;
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
