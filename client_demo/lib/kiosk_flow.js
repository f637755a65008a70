// Kiosk sessions: finish (hand the session to the shopper's phone with a QR code), start over
// for the next shopper when left idle, and the phone's side, claiming the hand-off.
import { resetFit } from './fit_panel.js';
import { normalizeClaim, showHandoff } from './handoff_view.js';
import { IdleTimer, claimHandoff, mintHandoff } from './kiosk.js';
import { stopStream } from './live.js';
import { photoTouches } from './photo_session.js';
import { renderRails } from './selection.js';
import { clearStage, setMirrored } from './stage.js';
import { MODE, newSession, state } from './state.js';
import { $, toast } from './ui.js';

export let idle = null;

export function initKiosk(idleS) {
  idle = new IdleTimer(idleS, resetKiosk);
}

export async function finishKiosk() {
  idle?.poke();
  stopStream();
  await state.events.flush();
  try {
    const h = await mintHandoff(state.api, {
      anonymousId: state.anonymousId, storeId: state.storeId, kioskId: state.kioskId,
    });
    state.handoff = h;
    $('#handoff-qr').src = h.qrObjectUrl;
    $('#handoff-expiry').textContent = h.expiresAt ? `Valid until ${new Date(h.expiresAt).toLocaleTimeString()}.` : '';
  } catch (err) {
    $('#handoff-expiry').textContent = `Hand-off unavailable: ${err.message}`;
  }
  $('#studio').hidden = true;
  $('#finish').hidden = true;
  $('#readout').hidden = true;
  $('#handoff').hidden = false;
}

// Start over for the next shopper: nothing of the previous one stays on screen or in memory.
export async function resetKiosk() {
  photoTouches.reset();
  stopStream();
  await state.events.flush();
  if (state.handoff) URL.revokeObjectURL(state.handoff.qrObjectUrl);
  Object.assign(state, {
    handoff: null, photo: null, lastImage: null, lastMeta: null, lastPair: null,
    frames: 0, source: null, photoStarted: false,
  });
  Object.assign(state.selection, { kind: null, sku: null, variant: null, shade: null, intensity: 0.8 });
  resetFit();
  clearStage();
  $('#optin-measurements').checked = false;
  state.consent.measurements = false;
  state.events.consent = false;
  state.events.measurements = null;
  for (const id of ['#studio', '#handoff', '#finish', '#photo-fallback', '#readout', '#photo-change']) $(id).hidden = true;
  $('#consent').hidden = false;
  $('#cart-msg').textContent = '';
  state.offersPanel.reset();
  setMirrored(true);
  renderRails();
  // The next customer is a new shopper: a new session (token and anonymous_id).
  newSession()
    .catch((err) => toast(`Could not start a new session: ${err.message}`))
    .finally(() => { state.resets = (state.resets || 0) + 1; });
}

// On the phone: the kiosk's QR opened /demo/?handoff=TOKEN. What was tried and carted at
// the kiosk shows at once (handoff_view.js), inline, not as a toast.
export async function claim(token) {
  try {
    const body = await claimHandoff(state.api, token, state.anonymousId);
    state.claimed = token;
    state.claim = body;
    showHandoff('Welcome back: your kiosk try-ons are with you now.', normalizeClaim(body));
  } catch (err) {
    showHandoff(err.status === 410 ? 'That hand-off code has expired.' : `Hand-off failed: ${err.message}`, null);
  }
  // Drop the token from the address bar: it is single use, and a reload must not retry it.
  history.replaceState(null, '', location.pathname + (MODE === 'kiosk' ? '?mode=kiosk' : ''));
}
