// Kiosk mode: an idle timer that starts over for the next shopper, and the QR hand-off
// that moves the session to the shopper's phone.

export class IdleTimer {
  constructor(seconds, onIdle) {
    this.ms = seconds * 1000;
    this.onIdle = onIdle;
    this.timer = null;
    this.active = false;
    this.lastActivity = performance.now();
    const poke = () => this.poke();
    for (const ev of ['pointerdown', 'keydown', 'touchstart', 'wheel']) {
      addEventListener(ev, poke, { passive: true, capture: true });
    }
  }

  start() {
    this.active = true;
    this.poke();
  }

  stop() {
    this.active = false;
    clearTimeout(this.timer);
  }

  poke() {
    this.lastActivity = performance.now();
    if (!this.active) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.active = false;
      this.onIdle();
    }, this.ms);
  }
}

// Mint a hand-off token for this kiosk session and return an object URL of its QR code.
// The QR is fetched from this origin's path (not the absolute qr_url, whose host may be a
// public name the page's same-origin policy does not allow) and shown from memory.
export async function mintHandoff(api, { anonymousId, storeId, kioskId }) {
  const body = { anonymous_id: anonymousId };
  if (storeId) body.store_id = storeId;
  if (kioskId) body.kiosk_id = kioskId;
  const res = await api.post(api.path('handoff'), body);
  const qrPath = `${api.path('handoff')}/${encodeURIComponent(res.token)}/qr.png`;
  const blob = await api.get(qrPath, { as: 'blob' });
  return {
    token: res.token,
    url: res.url || null,
    expiresAt: res.expires_at || null,
    qrObjectUrl: URL.createObjectURL(blob),
  };
}

// On the phone: the QR opened /demo/?handoff=TOKEN; link this browser's shopper id to the
// kiosk's so the try-on history and offers follow the shopper.
export async function claimHandoff(api, token, anonymousId) {
  const path = `${api.path('handoff')}/${encodeURIComponent(token)}/claim`;
  return api.post(path, { anonymous_id: anonymousId });
}

export async function enterFullscreen() {
  const root = document.documentElement;
  if (document.fullscreenElement || !root.requestFullscreen) return;
  try {
    await root.requestFullscreen({ navigationUI: 'hide' });
  } catch {
    // Not allowed here (no user gesture, or the kiosk browser is already full screen): fine.
  }
}
