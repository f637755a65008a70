// The photo-upload fallback: downscale the photo in the browser, render it with
// POST /v1/tryon/render?format=json, and log the touchpoints a stream session would log.

export const PHOTO_MAX_SIDE = 1280; // faster, and far below the service's body limit

export async function downscale(file, maxSide = PHOTO_MAX_SIDE) {
  const bmp = await createImageBitmap(file);
  const scale = Math.min(1, maxSide / Math.max(bmp.width, bmp.height));
  const c = document.createElement('canvas');
  c.width = Math.round(bmp.width * scale);
  c.height = Math.round(bmp.height * scale);
  c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
  bmp.close();
  return new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.9));
}

// Decoded by hand: the page's CSP (connect-src 'self') rightly refuses fetch('data:...').
export function base64Blob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

// selection: {kind: 'glasses'|'lipstick'|null, sku, variant, shade, intensity}
export async function renderOnPhoto(api, photo, selection) {
  const q = new URLSearchParams({ format: 'json' });
  if (selection.kind === 'glasses') {
    q.set('sku', selection.sku);
    if (selection.variant) q.set('variant', selection.variant);
  } else if (selection.kind === 'lipstick') {
    q.set('shade', selection.shade);
    q.set('intensity', String(selection.intensity));
  }
  const res = await api.post(`${api.path('render')}?${q}`, photo, {
    headers: { 'Content-Type': 'image/jpeg' },
  });
  return { res, blob: base64Blob(res.image_base64, res.content_type || 'image/jpeg') };
}

// The stream session logs its own touchpoints; a photo try-on has no session on the server,
// so the page logs the same ones: applied (once per product) and dwell when switching away.
export class PhotoTouches {
  constructor(events) {
    this.events = events;
    this.current = null; // {key, props, since}
    this.applied = new Set();
    addEventListener('pagehide', () => this.dwell('end'));
  }

  touch(sel) {
    const key = sel.kind === 'glasses' ? `g:${sel.sku}:${sel.variant}` : `s:${sel.shade}`;
    if (this.current?.key === key) return;
    this.dwell('switch');
    const props = sel.kind === 'glasses'
      ? { sku: sel.sku, variant: sel.variant, source: 'photo' }
      : { shade: sel.shade, intensity: sel.intensity, source: 'photo' };
    this.current = { key, props, since: performance.now() };
    if (!this.applied.has(key)) {
      this.applied.add(key);
      this.events.track(sel.kind === 'glasses' ? 'Frame Applied' : 'Shade Applied', props);
    }
  }

  dwell(reason) {
    if (!this.current) return;
    const dwellMs = Math.round(performance.now() - this.current.since);
    this.events.track('Try-On Dwell', { ...this.current.props, dwell_ms: dwellMs, reason });
    this.current = null;
  }

  reset() {
    this.dwell('end');
    this.applied.clear();
  }
}
