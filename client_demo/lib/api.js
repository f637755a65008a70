// The service's HTTP API as the pages use it: config, authenticated fetch, and the
// adapters that turn API shapes into what the UI draws (kept here so a changed field is one edit).

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export async function loadConfig() {
  const res = await fetch('/demo/config.json', { cache: 'no-store' });
  if (!res.ok) throw new ApiError(res.status, 'config', 'could not load the demo config');
  return res.json();
}

const SESSION_STORAGE = 'tryon.session';
const RENEW_EARLY_MS = 30_000; // renew a little before the server would refuse it

// Without an explicit key (the dashboard's analyst key), the page never uses the public demo
// key for anything but minting its own session: POST /v1/sessions gives a short-lived token
// bound to one pseudonymous shopper id, which is the page's anonymous_id. The token is kept
// in memory and in sessionStorage (this tab, for reloads); a 401 mints a new one. The stream
// opens with a fresh single-use ticket each time, so no key or token is ever in a URL.
export class Api {
  constructor(config, key, { persist = true } = {}) {
    this.config = config;
    this.paths = config.paths || {};
    this.fixedKey = key ?? null; // an explicit key: used as is, no session
    this.demoKey = config.api_key;
    this.persist = persist;
    this.session = this.fixedKey ? null : this.loadSession();
    this.minting = null;
    this.onSession = null; // (session) => void, when a new session (shopper) starts
  }

  get key() { return this.fixedKey ?? this.session?.token ?? null; }
  get shopperId() { return this.session?.shopper_id ?? null; }

  loadSession() {
    if (!this.persist) return null;
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_STORAGE) || 'null');
      return s && s.token && Date.parse(s.expires_at) - RENEW_EARLY_MS > Date.now() ? s : null;
    } catch { return null; }
  }

  // A session for this page (the current one while it is valid, else a new one).
  async ensureSession({ renew = false } = {}) {
    if (this.fixedKey) return null;
    const valid = this.session && Date.parse(this.session.expires_at) - RENEW_EARLY_MS > Date.now();
    if (valid && !renew) return this.session;
    if (!this.minting) {
      this.minting = this.mintSession().finally(() => { this.minting = null; });
    }
    return this.minting;
  }

  async mintSession() {
    const url = this.paths.sessions || '/v1/sessions';
    const headers = this.demoKey ? { Authorization: `Bearer ${this.demoKey}` } : {};
    const res = await fetch(url, { method: 'POST', headers });
    if (!res.ok) {
      let err = {};
      try { err = (await res.json()).error || {}; } catch { /* not JSON */ }
      throw new ApiError(res.status, err.code, err.message || `could not start a session (${res.status})`, err.detail);
    }
    this.session = await res.json();
    if (this.persist) {
      try { sessionStorage.setItem(SESSION_STORAGE, JSON.stringify(this.session)); } catch { /* private mode */ }
    }
    this.onSession?.(this.session);
    return this.session;
  }

  // A new shopper (a kiosk's next customer): forget the session, mint another.
  async newShopper() {
    if (this.fixedKey) return null;
    this.session = null;
    if (this.persist) {
      try { sessionStorage.removeItem(SESSION_STORAGE); } catch { /* private mode */ }
    }
    return this.ensureSession();
  }

  path(name, params = {}) {
    let p = this.paths[name];
    for (const [k, v] of Object.entries(params)) p = p.replace(`{${k}}`, encodeURIComponent(v));
    return p;
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.key) h.Authorization = `Bearer ${this.key}`;
    return h;
  }

  async request(url, opts = {}) {
    await this.ensureSession();
    const res = await this.send(url, opts);
    if (res.status === 401 && !this.fixedKey) {
      // Expired (or the server's secret changed): a new session, and the request once more.
      await this.ensureSession({ renew: true });
      return this.read(await this.send(url, opts), url, opts);
    }
    return this.read(res, url, opts);
  }

  send(url, { method = 'GET', body, headers = {}, keepalive = false } = {}) {
    const init = { method, headers: this.headers(headers), keepalive };
    if (body !== undefined) {
      if (body instanceof Blob || body instanceof FormData) init.body = body;
      else {
        init.body = JSON.stringify(body);
        init.headers['Content-Type'] = 'application/json';
      }
    }
    return fetch(url, init);
  }

  async read(res, url, { method = 'GET', as = 'json' } = {}) {
    if (!res.ok) {
      let err = {};
      try { err = (await res.json()).error || {}; } catch { /* not JSON */ }
      throw new ApiError(res.status, err.code, err.message || `${method} ${url}: ${res.status}`, err.detail);
    }
    if (as === 'blob') return res.blob();
    if (as === 'response') return res;
    if (res.status === 204) return null;
    return res.json();
  }

  get(url, opts) { return this.request(url, opts); }
  post(url, body, opts = {}) { return this.request(url, { ...opts, method: 'POST', body }); }

  // Browsers cannot set headers on a WebSocket: the stream opens with a single-use ticket
  // (valid seconds), fetched right before, never with the key or token in the URL.
  async streamUrl(query) {
    const path = this.paths.stream_tickets || '/v1/tryon/stream-tickets';
    const { ticket } = await this.post(path);
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const q = new URLSearchParams(query);
    q.set('ticket', ticket);
    return `${scheme}://${location.host}${this.path('stream')}?${q}`;
  }
}

// ---- adapters: API shapes -> UI shapes -------------------------------------------------

const listOf = (body, ...keys) => {
  if (Array.isArray(body)) return body;
  for (const k of keys) if (body && Array.isArray(body[k])) return body[k];
  return [];
};

export function normalizeProducts(body) {
  return listOf(body, 'products', 'items', 'data')
    .filter((p) => !p.type || p.type === 'glasses')
    .map((p) => ({
      sku: p.sku,
      name: p.name || p.sku,
      style: p.style || '',
      price: p.price ?? null,
      currency: p.currency || 'EUR',
      lens: num(p.lens_width_mm),
      bridge: num(p.bridge_mm),
      temple: num(p.temple_mm),
      frameWidth: num(p.frame_width_mm),
      sizeBand: p.size_band || '',
      variants: (p.variants || []).map((v) => ({
        name: v.name,
        color: v.frame_color || v.color || '#333',
      })),
    }));
}

export function normalizeShades(body) {
  return listOf(body, 'shades', 'items', 'data').map((s) => ({
    id: s.id ?? s.shade_id,
    name: s.name || s.id,
    hex: s.hex || s.color || '#b03050',
    finish: s.finish || 'satin',
    sku: s.sku || null,
    price: s.price ?? null,
    currency: s.currency || 'EUR',
  }));
}

// Measurements arrive in the photo render response and in the stream's per-frame message
// (both: `measurements` with PD, face width, recommended frame width, size band, reliable,
// quality flags; `fit` with the server's size advice and, for glasses, its verdict on the
// product the frame was drawn with). Taken as sent: the page never decides what fits.
export function normalizeFit(msg) {
  if (!msg) return null;
  const f = msg.fit || {};
  const m = { ...f, ...(msg.measurements || {}) };
  const pd = num(m.pd_mm);
  const width = num(m.face_width_mm);
  const sizeBand = m.size_band || null;
  if (pd == null && width == null && !sizeBand) {
    // A photo the service would not measure (face too small, turned...): why, and no numbers.
    const withheld = msg.measurements && msg.measurements.reliable === false;
    return withheld
      ? { withheld: true, reliable: false, flags: msg.measurements.quality_flags || [], pd: null, width: null, sizeBand: null, range: null, verdict: null, sku: null }
      : null;
  }
  const rec = m.recommended_frame_width_mm;
  return {
    pd,
    width,
    sizeBand,
    range: Array.isArray(rec) && rec.length === 2 ? rec.map(Number) : null,
    reliable: m.reliable !== false,
    flags: m.quality_flags || [],
    verdict: f.verdict || null, // "good fit" | "too narrow" | "too wide", for `sku`
    frameWidth: num(f.frame_width_mm),
    sku: f.verdict ? msg.selection?.sku ?? null : null,
  };
}

export function normalizeOffers(body) {
  return listOf(body, 'offers', 'items', 'data').map((o) => ({
    id: o.offer_id ?? o.id,
    sku: o.sku ?? o.product?.sku,
    name: o.name ?? o.product?.name ?? o.sku,
    reason: o.reason || (o.reasons || []).join(' · '),
    coupon: o.coupon || null,
    price: o.price ?? o.product?.price ?? null,
    currency: o.currency ?? o.product?.currency ?? 'EUR',
  }));
}

function num(v) {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

export function money(amount, currency = 'EUR') {
  if (amount == null) return '';
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount);
  } catch {
    return `${Number(amount).toFixed(2)} ${currency}`;
  }
}

export function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // Fallback for insecure origins (a kiosk on plain http on the LAN): RFC 4122 v4 by hand.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
