// The catalog and what the shopper has picked: the glasses rail, the lipstick swatches and
// intensity, the tabs, and sending a pick to the stream (a control message) or the photo.
import { normalizeProducts, normalizeShades } from './api.js';
import { renderVerdict } from './fit_panel.js';
import { OFFERS_FIRST_AFTER_MS } from './offers.js';
import { photoTouches, renderPhoto } from './photo_session.js';
import { state } from './state.js';
import { $, renderGlassesRail, renderSwatches, toast } from './ui.js';

export async function loadCatalog() {
  const [products, shades] = await Promise.allSettled([
    state.api.get(state.api.path('products')),
    state.api.get(state.api.path('shades')),
  ]);
  state.products = products.status === 'fulfilled' ? normalizeProducts(products.value) : [];
  state.shades = shades.status === 'fulfilled' ? normalizeShades(shades.value) : [];
  if (products.status === 'rejected') toast(`Catalog unavailable: ${products.reason.message}`);
  renderRails();
}

export function renderRails() {
  const fitting = new Set(state.fitting?.skus || []);
  renderGlassesRail($('#rail-glasses'), state.products, state.selection, fitting, pickGlasses);
  renderSwatches($('#swatches'), state.shades, state.selection, pickShade);
  const shade = currentShade();
  $('#finish-info').textContent = shade ? `${shade.name}: ${shade.finish} finish` : '';
  $('#intensity-out').textContent = `${Math.round(state.selection.intensity * 100)}%`;
  const label = selectedLabel();
  $('#selected').textContent = label || 'Pick a frame or a shade.';
  $('#add-to-cart').disabled = !label;
  $('#buy').disabled = !label;
}

export const currentProduct = () => state.products.find((p) => p.sku === state.selection.sku) || null;
export const currentShade = () => state.shades.find((s) => s.id === state.selection.shade) || null;

export function selectedLabel() {
  const s = state.selection;
  if (s.kind === 'glasses' && currentProduct()) return `${currentProduct().name}${s.variant ? ` · ${s.variant}` : ''}`;
  if (s.kind === 'lipstick' && currentShade()) return `Lipstick · ${currentShade().name}`;
  return '';
}

export function pickGlasses(sku, variant) {
  Object.assign(state.selection, { kind: 'glasses', sku, variant: variant ?? null, shade: null });
  applySelection();
}

export function pickShade(shadeId) {
  Object.assign(state.selection, { kind: 'lipstick', shade: shadeId, sku: null, variant: null });
  applySelection();
}

export function clearSelection() {
  if (state.source === 'photo') photoTouches.dwell('switch');
  Object.assign(state.selection, { kind: null, sku: null, variant: null, shade: null });
  applySelection();
}

// The control message for the stream: switching is a message, not a reconnect, so it is instant.
export function controlMessage() {
  const s = state.selection;
  if (s.kind === 'glasses') return { type: 'select', sku: s.sku, ...(s.variant ? { variant: s.variant } : {}) };
  if (s.kind === 'lipstick') return { type: 'shade', shade: s.shade, intensity: s.intensity };
  return { type: 'clear' };
}

function applySelection() {
  renderRails();
  renderVerdict(state.fit, state.selection, state.products); // only about the selected frame
  if (state.source === 'camera' && state.stream) {
    state.stream.send(controlMessage());
    state.sentIntensity = state.selection.intensity;
  }
  else if (state.source === 'photo') renderPhoto();
  state.offersPanel.schedule(OFFERS_FIRST_AFTER_MS);
}

export function selectTab(name) {
  for (const t of document.querySelectorAll('.tab[data-tab]')) {
    const on = t.dataset.tab === name;
    t.classList.toggle('active', on);
    t.setAttribute('aria-selected', String(on));
  }
  $('#rail-glasses').hidden = name !== 'glasses';
  $('#rail-lipstick').hidden = name !== 'lipstick';
}

// The intensity slider: the picture follows the drag, but the stream hears about it only when
// the slider rests (trailing edge, INTENSITY_DEBOUNCE_MS) or is let go, so one drag is a few
// control messages, not one per input event. Intensity is an adjustment of the shade being
// tried; the server decides what counts as a try-on. The photo renders once when let go.
export const INTENSITY_DEBOUNCE_MS = 150;

export function bindIntensity(slider) {
  let timer = null;
  const sendNow = () => {
    clearTimeout(timer);
    timer = null;
    if (state.selection.kind !== 'lipstick' || state.source !== 'camera' || !state.stream) return;
    const value = state.selection.intensity;
    if (value === state.sentIntensity) return;
    state.sentIntensity = value;
    state.stream.send({ type: 'intensity', value });
  };
  slider.addEventListener('input', () => {
    state.selection.intensity = Number(slider.value) / 100;
    $('#intensity-out').textContent = `${slider.value}%`;
    clearTimeout(timer);
    timer = setTimeout(sendNow, INTENSITY_DEBOUNCE_MS);
  });
  slider.addEventListener('change', () => {
    sendNow();
    if (state.selection.kind === 'lipstick' && state.source === 'photo') renderPhoto();
  });
}
