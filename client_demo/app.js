// Shopper page (/demo) and kiosk mode (/demo?mode=kiosk): consent, camera stream or photo,
// product rail, fit, cart events and offers. State lives here; lib/ holds the parts.
import { Api, loadConfig, normalizeFit, normalizeProducts, normalizeShades, uuid } from './lib/api.js';
import { EventQueue } from './lib/events.js';
import { FitSmoother } from './lib/fit.js';
import { IdleTimer, claimHandoff, enterFullscreen, mintHandoff } from './lib/kiosk.js';
import { OFFERS_FIRST_AFTER_MS, OffersPanel } from './lib/offers.js';
import { PhotoTouches, downscale, renderOnPhoto } from './lib/photo.js';
import { $, fits, renderFit, renderGlassesRail, renderSwatches, toast } from './lib/ui.js';
import { TryOnStream, cameraErrorText, closeCamera, median, openCamera } from './lib/stream.js';

const params = new URLSearchParams(location.search);
const MODE = params.get('mode') === 'kiosk' ? 'kiosk' : 'web';
const CHANNEL = MODE === 'kiosk' ? 'kiosk' : 'web';

const state = {
  config: null,
  api: null,
  events: null,
  anonymousId: null,
  sessionId: null,
  consent: { measurements: false },
  products: [],
  shades: [],
  selection: { kind: null, sku: null, variant: null, shade: null, intensity: 0.8 },
  fit: null,
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
let photoTouches = null;
// The fit panel from the stream's per-frame measurements, as a calm running median.
const fitSmoother = new FitSmoother();

const view = $('#view');
const ctx = view.getContext('2d');
let pendingBitmap = null;
let drawScheduled = false;

// ---- session ---------------------------------------------------------------------------

function newSession() {
  if (MODE === 'kiosk') state.anonymousId = uuid(); // every kiosk shopper is a new one
  else {
    state.anonymousId = localStorage.getItem('tryon.anonymous_id') || uuid();
    localStorage.setItem('tryon.anonymous_id', state.anonymousId);
  }
  state.sessionId = uuid();
  state.events.identify({
    anonymous_id: state.anonymousId,
    session_id: state.sessionId,
    channel: CHANNEL,
    ...(state.storeId ? { store_id: state.storeId } : {}),
    ...(MODE === 'kiosk' ? { kiosk_id: state.kioskId } : {}),
  });
}

async function loadCatalog() {
  const [products, shades] = await Promise.allSettled([
    state.api.get(state.api.path('products')),
    state.api.get(state.api.path('shades')),
  ]);
  state.products = products.status === 'fulfilled' ? normalizeProducts(products.value) : [];
  state.shades = shades.status === 'fulfilled' ? normalizeShades(shades.value) : [];
  if (products.status === 'rejected') toast(`Catalog unavailable: ${products.reason.message}`);
  renderRails();
}

function renderRails() {
  renderGlassesRail($('#rail-glasses'), state.products, state.selection, state.fit, pickGlasses);
  renderSwatches($('#swatches'), state.shades, state.selection, pickShade);
  const shade = currentShade();
  $('#finish-info').textContent = shade ? `${shade.name}: ${shade.finish} finish` : '';
  $('#intensity-out').textContent = `${Math.round(state.selection.intensity * 100)}%`;
  const label = selectedLabel();
  $('#selected').textContent = label || 'Pick a frame or a shade.';
  $('#add-to-cart').disabled = !label;
  $('#buy').disabled = !label;
}

const currentProduct = () => state.products.find((p) => p.sku === state.selection.sku) || null;
const currentShade = () => state.shades.find((s) => s.id === state.selection.shade) || null;

function selectedLabel() {
  const s = state.selection;
  if (s.kind === 'glasses' && currentProduct()) return `${currentProduct().name}${s.variant ? ` · ${s.variant}` : ''}`;
  if (s.kind === 'lipstick' && currentShade()) return `Lipstick · ${currentShade().name}`;
  return '';
}

// ---- selection -------------------------------------------------------------------------

function pickGlasses(sku, variant) {
  Object.assign(state.selection, { kind: 'glasses', sku, variant: variant ?? null, shade: null });
  applySelection();
}

function pickShade(shadeId) {
  Object.assign(state.selection, { kind: 'lipstick', shade: shadeId, sku: null, variant: null });
  applySelection();
}

function clearSelection() {
  if (state.source === 'photo') photoTouches.dwell('switch');
  Object.assign(state.selection, { kind: null, sku: null, variant: null, shade: null });
  applySelection();
}

// The control message for the stream: switching is a message, not a reconnect, so it is instant.
function controlMessage() {
  const s = state.selection;
  if (s.kind === 'glasses') return { type: 'select', sku: s.sku, ...(s.variant ? { variant: s.variant } : {}) };
  if (s.kind === 'lipstick') return { type: 'shade', shade: s.shade, intensity: s.intensity };
  return { type: 'clear' };
}

function applySelection() {
  renderRails();
  if (state.source === 'camera') state.stream?.send(controlMessage());
  else if (state.source === 'photo') renderPhoto();
  state.offersPanel.schedule(OFFERS_FIRST_AFTER_MS);
}

// ---- camera stream ---------------------------------------------------------------------

async function startCamera() {
  state.source = 'camera';
  setStageMsg('Starting camera…');
  const video = $('#cam');
  try {
    await openCamera(video);
  } catch (err) {
    showPhotoFallback(cameraErrorText(err));
    return;
  }
  const url = state.api.wsUrl({
    anonymous_id: state.anonymousId,
    session_id: state.sessionId,
    channel: CHANNEL,
    // Opted in: the stream's own events (Try-On Started, Frame Applied, dwell, snapshot) then
    // carry PD, face width and size band; without it the parameter is left out entirely.
    ...(state.consent.measurements ? { consent: '1' } : {}),
    ...(state.storeId ? { store_id: state.storeId } : {}),
    ...(MODE === 'kiosk' ? { kiosk_id: state.kioskId } : {}),
  });
  const stream = new TryOnStream(url, video);
  state.stream = stream;
  stream.addEventListener('frame', onFrame);
  stream.addEventListener('message', (ev) => onControlReply(ev.detail));
  stream.addEventListener('close', (ev) => {
    if (state.stream !== stream) return;
    const { code, reason } = ev.detail;
    if (code === 1000) return;
    // Refused (busy: 1013, bad key: 1008) or lost: the photo path still works.
    state.stream = null;
    closeCamera(video);
    $('#readout').hidden = true;
    showPhotoFallback(`Live try-on stopped (${reason || `code ${code}`}).`);
  });
  setStageMsg('Connecting…');
  try {
    await stream.open();
  } catch (err) {
    state.stream = null;
    closeCamera(video);
    showPhotoFallback(`Live try-on is unavailable (${err.message}).`);
    return;
  }
  stream.send(controlMessage());
  $('#readout').hidden = false;
}

function onFrame(ev) {
  const { blob, meta, sent } = ev.detail;
  if (meta) onMeta(meta);
  if (!blob) return;
  state.lastImage = blob;
  // The frame that was sent with what came back for it (tests compare the two).
  state.lastPair = { sent: sent || null, received: blob, meta: meta || null };
  state.frames += 1;
  createImageBitmap(blob).then((bmp) => {
    pendingBitmap?.close();
    pendingBitmap = bmp;
    if (!drawScheduled) {
      drawScheduled = true;
      requestAnimationFrame(draw); // draw at display rate, never more than once a vsync
    }
  });
}

function draw() {
  drawScheduled = false;
  const bmp = pendingBitmap;
  if (!bmp) return;
  pendingBitmap = null;
  if (view.width !== bmp.width || view.height !== bmp.height) {
    view.width = bmp.width;
    view.height = bmp.height;
  }
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  $('#snapshot').disabled = false;
  const st = state.stream?.stats;
  if (st) {
    $('#fps').textContent = `${st.fps.toFixed(1)} fps`;
    const rtt = median(st.rtt);
    $('#latency').textContent = rtt == null ? '– ms' : `${Math.round(rtt)} ms`;
  }
}

function onMeta(meta) {
  state.lastMeta = meta;
  const faces = Array.isArray(meta.faces) ? meta.faces.length : meta.faces;
  setStageMsg(faces === 0 ? 'Looking for your face…' : '');
  // Every processed frame carries `measurements` (PD, face width, recommended frame width,
  // size band, reliable) and `fit`; the panel shows their running median, updated calmly.
  // No /v1/tryon/analyze call while streaming: the stream already measured the frame.
  const shown = fitSmoother.add(normalizeFit(meta));
  if (shown) updateFit(shown);
}

function onControlReply(msg) {
  if (msg.type === 'error' || msg.error) {
    const e = msg.error || msg;
    toast(e.message || e.code || 'The try-on service rejected a request.');
  }
}

function updateFit(fit) {
  const fitting = (f) => state.products.filter((p) => fits(p, f)).map((p) => p.sku).join();
  const changed = !state.fit || state.fit.sizeBand !== fit.sizeBand || fitting(state.fit) !== fitting(fit);
  state.fit = fit;
  state.fitUpdates = (state.fitUpdates || 0) + 1;
  renderFit(fit, state.products, state.source);
  if (changed) renderRails();
  // Opted in: the page's own events carry the measurements (the fit-gap report uses them).
  // The queue drops them again if consent is withdrawn.
  if (fit.reliable && fit.width != null && fit.pd != null) {
    state.events.measurements = {
      face_width_mm: round1(fit.width), pd_mm: round1(fit.pd), size_band: fit.sizeBand,
    };
  }
}

const round1 = (v) => Math.round(v * 10) / 10;

function setStageMsg(text) { $('#stage-msg').textContent = text; }

// ---- photo fallback --------------------------------------------------------------------

function showPhotoFallback(reason) {
  state.source = 'photo';
  fitSmoother.reset(); // the photo is measured on its own (render?format=json)
  setStageMsg('');
  $('#photo-reason').textContent = `${reason} You can try everything on a photo instead.`;
  $('#photo-fallback').hidden = false;
  view.classList.remove('mirrored'); // a photo is shown as taken, not as a mirror
}

async function onPhotoChosen(file) {
  if (!file) return;
  state.photo = await downscale(file);
  $('#photo-fallback').hidden = true;
  $('#photo-change').hidden = false;
  await renderPhoto();
  if (!state.photoStarted) {
    state.photoStarted = true;
    state.events.track('Try-On Started', { source: 'photo' });
  }
}

let photoSeq = 0;
async function renderPhoto() {
  if (!state.photo) return;
  const seq = ++photoSeq;
  const sel = { ...state.selection };
  setStageMsg('Rendering…');
  try {
    const { res, blob } = await renderOnPhoto(state.api, state.photo, sel);
    if (seq !== photoSeq) return; // a newer selection already asked again
    onFrame({ detail: { blob, meta: null } });
    state.lastMeta = res;
    const fit = normalizeFit(res);
    if (fit) updateFit(fit);
    setStageMsg(res.faces === 0 ? 'No face found in this photo. Try another one.' : '');
    if (res.applied) photoTouches.touch(sel);
  } catch (err) {
    if (seq === photoSeq) setStageMsg(`Could not render the photo: ${err.message}`);
  }
}

// ---- snapshot, cart, order -------------------------------------------------------------

function productProps() {
  const s = state.selection;
  if (s.kind === 'glasses') {
    const p = currentProduct();
    return { sku: s.sku, variant: s.variant, price: p?.price, currency: p?.currency, category: 'glasses' };
  }
  const sh = currentShade();
  return { sku: sh?.sku || s.shade, shade: s.shade, price: sh?.price, currency: sh?.currency, category: 'lipstick' };
}

function snapshot() {
  if (!state.lastImage) return;
  const url = URL.createObjectURL(state.lastImage);
  const a = document.createElement('a');
  a.href = url;
  a.download = `tryon-${new Date().toISOString().replace(/[:.]/g, '-')}.jpg`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  if (state.source === 'camera' && state.stream?.isOpen) {
    state.stream.send({ type: 'snapshot' }); // the stream session logs Snapshot Captured itself
  } else {
    const props = state.selection.kind ? productProps() : {};
    state.events.track('Snapshot Captured', { ...props, source: 'photo' });
  }
  toast('Snapshot saved.', 2000);
}

function addToCart() {
  state.events.track('Product Added', productProps());
  $('#cart-msg').textContent = `${selectedLabel()} added to your cart.`;
  state.offersPanel.schedule(1500, { force: true });
}

function buy() {
  const props = productProps();
  state.events.track('Order Completed', {
    ...props,
    order_id: uuid(),
    total: props.price,
    products: [{ sku: props.sku, variant: props.variant, shade: props.shade, price: props.price }],
  });
  $('#cart-msg').textContent = `Thank you! Order placed for ${selectedLabel()}.`;
  state.events.flush();
}

// ---- kiosk -----------------------------------------------------------------------------

let idle = null;

async function finishKiosk() {
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

function stopStream() {
  state.stream?.close();
  state.stream = null;
  closeCamera($('#cam'));
}

// Start over for the next shopper: nothing of the previous one stays on screen or in memory.
async function resetKiosk() {
  photoTouches.reset();
  fitSmoother.reset();
  stopStream();
  await state.events.flush();
  if (state.handoff) URL.revokeObjectURL(state.handoff.qrObjectUrl);
  Object.assign(state, {
    handoff: null, fit: null, photo: null, lastImage: null, lastMeta: null, lastPair: null,
    frames: 0, source: null, photoStarted: false,
  });
  Object.assign(state.selection, { kind: null, sku: null, variant: null, shade: null, intensity: 0.8 });
  ctx.clearRect(0, 0, view.width, view.height);
  $('#optin-measurements').checked = false;
  state.consent.measurements = false;
  state.events.consent = false;
  state.events.measurements = null;
  for (const id of ['#studio', '#handoff', '#finish', '#photo-fallback', '#readout', '#photo-change']) $(id).hidden = true;
  $('#consent').hidden = false;
  $('#cart-msg').textContent = '';
  renderFit(null, state.products);
  state.offersPanel.reset();
  view.classList.add('mirrored');
  newSession();
  renderRails();
  state.resets = (state.resets || 0) + 1;
}

async function claim(token) {
  try {
    await claimHandoff(state.api, token, state.anonymousId);
    state.claimed = token;
    toast('Welcome back: your kiosk try-ons are with you now.', 5000);
  } catch (err) {
    toast(err.status === 410 ? 'That hand-off code has expired.' : `Hand-off failed: ${err.message}`);
  }
  // Drop the token from the address bar: it is single use, and a reload must not retry it.
  history.replaceState(null, '', location.pathname + (MODE === 'kiosk' ? '?mode=kiosk' : ''));
}

// ---- wiring ----------------------------------------------------------------------------

function begin(useCamera) {
  state.consent.measurements = $('#optin-measurements').checked;
  state.events.consent = state.consent.measurements;
  $('#consent').hidden = true;
  $('#studio').hidden = false;
  if (MODE === 'kiosk') {
    $('#finish').hidden = false;
    enterFullscreen();
    idle.start();
  }
  if (useCamera) startCamera();
  else showPhotoFallback('No camera used.');
}

function selectTab(name) {
  for (const t of document.querySelectorAll('.tab[data-tab]')) {
    const on = t.dataset.tab === name;
    t.classList.toggle('active', on);
    t.setAttribute('aria-selected', String(on));
  }
  $('#rail-glasses').hidden = name !== 'glasses';
  $('#rail-lipstick').hidden = name !== 'lipstick';
}

async function main() {
  state.config = await loadConfig();
  state.api = new Api(state.config);
  state.events = new EventQueue(state.api, state.config.events || {});
  photoTouches = new PhotoTouches(state.events);
  state.offersPanel = new OffersPanel({
    api: state.api,
    events: state.events,
    root: $('#offers'),
    channel: CHANNEL,
    shopper: () => state.anonymousId,
    products: () => state.products,
    onAccept: (offer) => {
      if (state.products.some((p) => p.sku === offer.sku)) pickGlasses(offer.sku, null);
      else if (state.shades.some((sh) => sh.id === offer.sku)) pickShade(offer.sku);
    },
  });
  if (MODE === 'kiosk') {
    document.body.classList.add('kiosk');
    const idleS = Number(params.get('idle')) || state.config.kiosk_idle_s || 90;
    idle = new IdleTimer(idleS, resetKiosk);
  }
  newSession();
  $('#start').addEventListener('click', () => begin(true));
  $('#use-photo').addEventListener('click', () => begin(false));
  $('#photo-input').addEventListener('change', (ev) => onPhotoChosen(ev.target.files[0]));
  $('#photo-input-2').addEventListener('change', (ev) => onPhotoChosen(ev.target.files[0]));
  $('#snapshot').addEventListener('click', snapshot);
  $('#add-to-cart').addEventListener('click', addToCart);
  $('#buy').addEventListener('click', buy);
  $('#clear').addEventListener('click', clearSelection);
  $('#finish').addEventListener('click', finishKiosk);
  $('#handoff-done').addEventListener('click', resetKiosk);
  for (const t of document.querySelectorAll('.tab[data-tab]')) t.addEventListener('click', () => selectTab(t.dataset.tab));
  const slider = $('#intensity');
  slider.addEventListener('input', () => {
    state.selection.intensity = Number(slider.value) / 100;
    $('#intensity-out').textContent = `${slider.value}%`;
    if (state.selection.kind === 'lipstick' && state.source === 'camera') {
      state.stream?.send({ type: 'intensity', value: state.selection.intensity });
    }
  });
  slider.addEventListener('change', () => {
    if (state.selection.kind === 'lipstick' && state.source === 'photo') renderPhoto();
  });
  await loadCatalog();
  if (params.get('handoff') && MODE === 'web') await claim(params.get('handoff'));
  document.body.dataset.ready = '1';
}

main().catch((err) => {
  console.error(err);
  toast(`The demo could not start: ${err.message}`, 60000);
});
