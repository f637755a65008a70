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

export function addToCart() {
  state.events.track('Product Added', productProps());
  $('#cart-msg').textContent = `${selectedLabel()} added to your cart.`;
  state.offersPanel.schedule(1500, { force: true });
}

export function buy() {
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
