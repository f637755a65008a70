// The phone's side of a kiosk hand-off: what the shopper tried at the kiosk (with how long)
// and put in the cart there, shown at once after the claim, above the consent screen and in
// the studio (a <details> the shopper can fold), never as a toast over a button.
// The claim answer (POST /v1/handoff/{token}/claim) carries `shortlist` and `cart`; read
// tolerantly here, so a renamed field is one edit.
import { money } from './api.js';
import { state } from './state.js';
import { $, el } from './ui.js';

const arr = (v) => (Array.isArray(v) ? v : []);

function listFrom(v, ...keys) {
  if (Array.isArray(v)) return v;
  if (!v || typeof v !== 'object') return [];
  return keys.flatMap((k) => arr(v[k]));
}

function item(x) {
  const shade = x.shade ?? x.shade_id ?? null;
  return {
    kind: x.product_type || x.kind || (shade ? 'lipstick' : 'glasses'),
    sku: x.sku ?? shade,
    variant: x.variant ?? null,
    shade,
    name: x.name ?? null,
    dwellMs: x.dwell_ms ?? x.total_dwell_ms ?? x.dwell_total_ms ?? null,
    tries: x.try_ons ?? x.tries ?? null,
    price: x.price ?? null,
    currency: x.currency || 'EUR',
    quantity: x.quantity ?? 1,
  };
}

export function normalizeClaim(body) {
  const shortlist = listFrom(body?.shortlist ?? body?.tried, 'items', 'products', 'shades', 'tried');
  const cart = listFrom(body?.cart, 'items', 'lines', 'products');
  return { shortlist: shortlist.map(item), cart: cart.map(item), present: body?.shortlist !== undefined || body?.cart !== undefined };
}

// A catalog name for an item the service named only by sku/shade.
function label(it) {
  if (it.name) return it.name;
  if (it.kind === 'lipstick') {
    const sh = state.shades.find((s) => s.id === it.shade || s.sku === it.sku);
    return `Lipstick · ${sh?.name || it.shade || it.sku}`;
  }
  const p = state.products.find((x) => x.sku === it.sku);
  return `${p?.name || it.sku}${it.variant ? ` · ${it.variant}` : ''}`;
}

const secs = (ms) => (ms == null ? '' : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`);

function row(it, extra) {
  return el('li', { dataset: { sku: it.sku || '', kind: it.kind } }, el('span', { class: 'name' }, label(it)), el('span', { class: 'meta' }, extra));
}

// status: a line about the claim (welcome, expired...); claim: normalizeClaim() or null.
export function showHandoff(status, claim) {
  const root = $('#from-kiosk');
  const tried = claim?.shortlist || [];
  const cart = claim?.cart || [];
  $('#from-kiosk-status').textContent = status;
  $('#from-kiosk-summary').textContent = claim
    ? `From the kiosk: ${tried.length} tried · ${cart.length} in your cart`
    : 'Kiosk hand-off';
  $('#from-kiosk-tried').replaceChildren(...(tried.length
    ? tried.map((it) => row(it, [it.dwellMs != null ? `tried ${secs(it.dwellMs)}` : 'tried', it.price != null ? money(it.price, it.currency) : ''].filter(Boolean).join(' · ')))
    : [el('li', { class: 'muted' }, claim?.present === false ? 'Your kiosk try-ons are linked to this phone.' : 'Nothing tried at the kiosk.')]));
  $('#from-kiosk-cart').replaceChildren(...(cart.length
    ? cart.map((it) => row(it, [it.quantity > 1 ? `× ${it.quantity}` : '', money(it.price, it.currency)].filter(Boolean).join(' · ')))
    : [el('li', { class: 'muted' }, 'Your cart is empty.')]));
  $('#from-kiosk-cart-block').hidden = !claim;
  root.hidden = false;
  root.open = true;
  state.fromKiosk = claim;
}

// In the studio the list folds to its one-line summary, leaving the stage the room.
export function foldHandoff() {
  const root = $('#from-kiosk');
  if (!root.hidden) root.open = false;
}
