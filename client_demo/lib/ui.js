// DOM rendering for the shopper page: product rail, shade swatches, offers, toasts.
// Pure functions of the data they are given; app.js owns the state and the wiring.
import { money } from './api.js';

export const $ = (sel, root = document) => root.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    // CSSOM, not a style attribute: the page's CSP forbids inline style attributes.
    else if (k === 'style') for (const [prop, val] of Object.entries(v)) node.style.setProperty(prop, val);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null) node.append(c.nodeType ? c : String(c));
  return node;
}

// "52□18-140": lens width, bridge and temple length, the way frames are labelled.
export function sizeTriple(p) {
  if (p.lens == null || p.bridge == null) return '';
  return `${Math.round(p.lens)}□${Math.round(p.bridge)}${p.temple != null ? `-${Math.round(p.temple)}` : ''}`;
}

// fitting: the SKUs the server says fit the shopper's face (badged *fits you*).
export function renderGlassesRail(root, products, selection, fitting, onPick) {
  root.replaceChildren();
  if (!products.length) {
    root.append(el('p', { class: 'muted' }, 'No frames in the catalog yet.'));
    return;
  }
  for (const p of products) {
    const selected = selection.kind === 'glasses' && selection.sku === p.sku;
    const card = el(
      'div',
      {
        class: `product${selected ? ' selected' : ''}`,
        role: 'button',
        tabindex: '0',
        dataset: { sku: p.sku },
        onclick: (ev) => {
          if (!ev.target.closest('.variant')) onPick(p.sku, selected ? selection.variant : p.variants[0]?.name);
        },
        onkeydown: (ev) => { if (ev.key === 'Enter') onPick(p.sku, p.variants[0]?.name); },
      },
      el('span', { class: 'name' }, p.name, ' ', fitting.has(p.sku) ? el('span', { class: 'badge' }, 'fits you') : null),
      el('span', { class: 'price' }, money(p.price, p.currency)),
      el('span', { class: 'meta' }, [p.style, p.sizeBand && `size ${p.sizeBand}`].filter(Boolean).join(' · ')),
      el('span', { class: 'size', title: 'lens width □ bridge - temple (mm)' }, sizeTriple(p)),
      el(
        'div',
        { class: 'variants' },
        p.variants.map((v) =>
          el('button', {
            type: 'button',
            class: `variant${selected && selection.variant === v.name ? ' selected' : ''}`,
            title: v.name,
            'aria-label': `${p.name} in ${v.name}`,
            dataset: { variant: v.name },
            style: { background: safeColor(v.color) },
            onclick: () => onPick(p.sku, v.name),
          }),
        ),
      ),
    );
    root.append(card);
  }
}

export function renderSwatches(root, shades, selection, onPick) {
  root.replaceChildren();
  if (!shades.length) {
    root.append(el('p', { class: 'muted' }, 'No shades yet.'));
    return;
  }
  for (const s of shades) {
    const selected = selection.kind === 'lipstick' && selection.shade === s.id;
    root.append(
      el(
        'button',
        {
          type: 'button',
          class: `swatch${selected ? ' selected' : ''}`,
          title: `${s.name} (${s.finish})`,
          dataset: { shade: s.id },
          onclick: () => onPick(s.id),
        },
        el('span', { class: 'dot', style: { background: safeColor(s.hex) } }),
        el('span', {}, s.name),
      ),
    );
  }
}

export function renderOffers(root, offers, handlers, empty = '') {
  root.replaceChildren();
  if (!offers.length) {
    root.append(el('li', { class: 'muted' }, empty || 'Offers appear after you try a few things.'));
    return;
  }
  for (const o of offers) {
    const c = o.coupon;
    const couponText = c
      ? `${c.discount_percent ? `${c.discount_percent}% off` : 'Coupon'} with code ${c.code}` +
        (c.expires_at ? ` · until ${new Date(c.expires_at).toLocaleString()}` : '')
      : null;
    root.append(
      el(
        'li',
        { class: 'offer', dataset: { sku: o.sku, offer: o.id } },
        el('div', { class: 'title' }, el('span', {}, o.name), el('span', {}, money(o.price, o.currency))),
        o.reason ? el('div', { class: 'reason' }, o.reason) : null,
        couponText ? el('div', { class: 'coupon' }, couponText) : null,
        el(
          'div',
          { class: 'actions' },
          el('button', { type: 'button', class: 'btn primary', onclick: () => handlers.accept(o) }, 'Try it'),
          el('button', { type: 'button', class: 'btn', onclick: () => handlers.reject(o) }, 'Not for me'),
        ),
      ),
    );
  }
}

// Colours come from the catalog; only let plain hex/rgb values into a style attribute.
export function safeColor(c) {
  return /^#[0-9a-f]{3,8}$/i.test(c) || /^rgba?\([\d.,\s%]+\)$/i.test(c) ? c : '#888';
}

let toastTimer = null;
export function toast(text, ms = 4000) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}
