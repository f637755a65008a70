// Snapshot, cart and order: what the shopper keeps or buys, logged as events.
import { uuid } from './api.js';
import { currentProduct, currentShade, selectedLabel } from './selection.js';
import { state } from './state.js';
import { $, toast } from './ui.js';

export function productProps() {
  const s = state.selection;
  if (s.kind === 'glasses') {
    const p = currentProduct();
    return { sku: s.sku, variant: s.variant, price: p?.price, currency: p?.currency, category: 'glasses' };
  }
  const sh = currentShade();
  return { sku: sh?.sku || s.shade, shade: s.shade, price: sh?.price, currency: sh?.currency, category: 'lipstick' };
}

export function snapshot() {
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

// What the page says once the event is safe: on the server, or on this device's disk.
const SAFE = {
  stored: '',
  queued: ' Saved on this device; it is sent as soon as the connection is back.',
};

async function recorded(event, props, done) {
  const msg = $('#cart-msg');
  msg.dataset.status = 'saving';
  msg.textContent = 'Saving…';
  const { id, status } = await state.events.record(event, props);
  msg.dataset.status = status;
  msg.dataset.messageId = id;
  if (status in SAFE) msg.textContent = `${done}${SAFE[status]}`;
  else if (status === 'rejected') msg.textContent = 'The shop could not take that; please ask a member of staff.';
  else msg.textContent = 'Not saved yet (no storage on this device): keep this page open while we retry.';
  return status;
}

export async function addToCart() {
  const label = selectedLabel();
  await recorded('Product Added', productProps(), `${label} added to your cart.`);
  state.cart = [...(state.cart || []), { ...productProps(), label }];
  state.offersPanel.schedule(1500, { force: true });
}

export async function buy() {
  const props = productProps();
  const label = selectedLabel();
  await recorded('Order Completed', {
    ...props,
    order_id: uuid(),
    total: props.price,
    products: [{ sku: props.sku, variant: props.variant, shade: props.shade, price: props.price }],
  }, `Thank you! Order placed for ${label}.`);
}
