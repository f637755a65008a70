// The shopper page's one state object (window.tryon, which the tests read), the page mode
// (web or kiosk) and the shopper session ids every event and the stream carry.
import { uuid } from './api.js';

export const params = new URLSearchParams(location.search);
export const MODE = params.get('mode') === 'kiosk' ? 'kiosk' : 'web';
export const CHANNEL = MODE === 'kiosk' ? 'kiosk' : 'web';

export const state = {
  config: null,
  api: null,
  events: null,
  anonymousId: null,
  sessionId: null,
  consent: { measurements: false },
  products: [],
  shades: [],
  selection: { kind: null, sku: null, variant: null, shade: null, intensity: 0.8 },
  fit: null, // the fit panel's numbers: the server's measurements, as a running median
  fitting: null, // the server's frames that fit: {faceWidth, skus} (GET /v1/products?face_width_mm)
  source: null, // 'camera' | 'photo'
  stream: null,
  photo: null, // the uploaded photo (downscaled JPEG blob), kept in memory only
  lastImage: null, // the last composited image (blob), for the snapshot
  lastMeta: null,
  offersPanel: null,
  frames: 0,
  kioskId: params.get('kiosk') || 'kiosk-demo',
  storeId: params.get('store') || (MODE === 'kiosk' ? 'store-demo' : null),
};
// Tests and curious developers read the live state here.
window.tryon = state;
Object.defineProperty(state, 'offers', { get: () => state.offersPanel?.offers ?? [] });

// The query/identity fields of this shopper's session (events and the stream URL).
export function sessionFields() {
  return {
    anonymous_id: state.anonymousId,
    session_id: state.sessionId,
    channel: CHANNEL,
    ...(state.storeId ? { store_id: state.storeId } : {}),
    ...(MODE === 'kiosk' ? { kiosk_id: state.kioskId } : {}),
  };
}

// The shopper is the server's: the session token's pseudonymous id is the anonymous_id (the
// token may act for that shopper only). A kiosk's next customer gets a new session.
export async function newSession({ newShopper = MODE === 'kiosk' } = {}) {
  const session = newShopper ? await state.api.newShopper() : await state.api.ensureSession();
  state.anonymousId = session?.shopper_id ?? state.anonymousId ?? uuid();
  state.sessionId = uuid();
  state.events.identify(sessionFields());
}

// A renewed session (the old token expired) is a new shopper id: events follow it.
export function followSession(session) {
  if (!session?.shopper_id || session.shopper_id === state.anonymousId) return;
  state.anonymousId = session.shopper_id;
  state.events?.identify(sessionFields());
}
