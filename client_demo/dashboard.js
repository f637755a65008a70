// Product-team dashboard (/dashboard): analytics reports drawn as SVG charts and tables,
// filtered by date, channel and store, with CSV/JSONL/Parquet exports. Analyst key in
// sessionStorage (this tab only).
import { Api, ApiError, loadConfig, money, normalizeProducts, normalizeShades } from './lib/api.js';
import { barChart, divergingBars, fitGapChart, funnelChart, rangeBars } from './lib/charts.js';
import { $, el } from './lib/ui.js';

const KEY_STORAGE = 'tryon.analyst_key';
const EXPORT_FORMATS = [['csv', 'CSV'], ['jsonl', 'JSONL'], ['parquet', 'Parquet']];

const state = { config: null, analyst: null, catalog: null, data: null, loads: 0 };
window.dashboard = state;

const pct = (v) => (v == null ? '–' : `${(100 * v).toFixed(1)}%`);
const secs = (ms) => (ms == null ? '–' : `${(ms / 1000).toFixed(1)} s`);
const int = (v) => (v == null ? '–' : Number(v).toLocaleString('en-US'));

function base() {
  return state.config.paths.analytics;
}

function filterQuery() {
  const q = new URLSearchParams();
  const start = $('#f-start').value;
  const end = $('#f-end').value;
  if (start) q.set('start', `${start}T00:00:00Z`);
  if (end) {
    // The date picker's "to" day is inclusive; the API's end is exclusive.
    const d = new Date(`${end}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + 1);
    q.set('end', d.toISOString().replace('.000Z', 'Z'));
  }
  if ($('#f-channel').value) q.set('channel', $('#f-channel').value);
  if ($('#f-store').value.trim()) q.set('store_id', $('#f-store').value.trim());
  if ($('#f-type').value) q.set('product_type', $('#f-type').value);
  return q;
}

const shadeParams = () => ($('#shade-by-tone').checked ? { by_skin_tone: 'true' } : {});

// extra: more parameters; a null value removes a filter (the NPS tile is for all channels).
function reportUrl(name, extra = {}) {
  const q = filterQuery();
  for (const [k, v] of Object.entries(extra)) {
    if (v == null) q.delete(k);
    else q.set(k, v);
  }
  return `${base()}/${name}?${q}`;
}

// Product names and shade colours come from the public catalog (demo key): nice to have.
async function loadCatalog() {
  if (state.catalog) return state.catalog;
  const pub = new Api(state.config);
  const [p, s] = await Promise.allSettled([pub.get(pub.path('products')), pub.get(pub.path('shades'))]);
  state.catalog = {
    products: new Map((p.status === 'fulfilled' ? normalizeProducts(p.value) : []).map((x) => [x.sku, x])),
    shades: new Map((s.status === 'fulfilled' ? normalizeShades(s.value) : []).map((x) => [x.id, x])),
  };
  return state.catalog;
}

async function loadStores() {
  try {
    const body = await state.analyst.get(`${base()}/products?group_by=store`);
    const stores = [...new Set(body.rows.map((r) => r.store_id).filter(Boolean))].sort();
    $('#stores').replaceChildren(...stores.map((s) => el('option', { value: s })));
  } catch {
    // Only a convenience for the store filter.
  }
}

async function load() {
  const seq = ++state.loads;
  $('#status').textContent = 'Loading…';
  const channel = $('#f-channel').value;
  const [catalog, products, funnel, shades, nps, fitgap, npsAll] = await Promise.all([
    loadCatalog(),
    state.analyst.get(reportUrl('products', { group_by: '' })),
    state.analyst.get(reportUrl('funnel')),
    state.analyst.get(reportUrl('shades', shadeParams())),
    state.analyst.get(reportUrl('nps')),
    state.analyst.get(reportUrl('fit-gap')),
    // The NPS tile is over all channels whatever the channel filter (NPS has no product type).
    channel ? state.analyst.get(reportUrl('nps', { channel: null })) : null,
  ]);
  if (seq !== state.loads) return; // a newer filter change won
  const type = $('#f-type').value;
  // A service that does not know the product-type filter ignores it: say so, do not pretend.
  const typeIgnored = type && products.filters && products.filters.product_type !== type;
  state.data = {
    products: products.rows, funnel: funnel.rows, funnelWindow: funnel.window_hours,
    funnelTotals: funnel.totals || null, shades: shades.rows, nps: nps.rows, fitgap,
    npsAll: (npsAll || nps).rows, typeIgnored,
  };
  render(catalog);
  $('#status').textContent = typeIgnored
    ? 'This service does not filter by product type yet: showing all products.'
    : `Updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = String(seq);
}

function render(catalog) {
  const d = state.data;
  // Glasses by sku; a lipstick's sku is its shade's (id or catalog sku).
  const shadeOf = (sku) => catalog.shades.get(sku) || [...catalog.shades.values()].find((x) => x.sku === sku);
  const name = (sku) => catalog.products.get(sku)?.name || (shadeOf(sku) ? `Lipstick · ${shadeOf(sku).name}` : sku);
  const funnelBySku = new Map(d.funnel.map((r) => [r.sku, r]));
  const rows = d.products.map((p) => ({ ...p, ...(funnelBySku.get(p.sku) || { tried: 0, carted: 0, ordered: 0 }) }));

  // KPIs
  const tryOns = d.products.reduce((a, r) => a + r.try_ons, 0);
  const tried = d.funnel.reduce((a, r) => a + r.tried, 0);
  const carted = d.funnel.reduce((a, r) => a + r.carted, 0);
  const ordered = d.funnel.reduce((a, r) => a + r.ordered, 0);
  // Orders and revenue: every order (glasses and lipstick) when the service reports totals,
  // else the funnel's ordered cohorts; revenue only when the service reports it.
  const totals = d.funnelTotals || {};
  const revenue = totals.revenue ?? sumOf(d.funnel, 'revenue');
  $('#kpi-tryons').textContent = int(tryOns);
  $('#kpi-carted').textContent = int(totals.carted ?? carted);
  $('#kpi-ordered').textContent = int(totals.orders ?? ordered);
  // The service's totals name a currency only when every order shares one (null: mixed).
  const currency = d.funnelTotals ? totals.currency : 'EUR';
  $('#kpi-revenue').textContent = revenue == null ? '–'
    : currency ? money(revenue, currency) : `${Number(revenue).toFixed(2)} (mixed currencies)`;
  $('#kpi-revenue').parentElement.hidden = revenue == null; // not reported by this service
  $('#kpi-conv').textContent = tried ? pct(ordered / tried) : '–';
  const all = d.npsAll.find((r) => r.channel === 'all');
  $('#kpi-nps').textContent = all ? all.nps.toFixed(0) : '–';

  // Per product: try-ons chart + table
  barChart($('#chart-products'), d.products.map((r) => ({
    label: name(r.sku), value: r.try_ons, note: `${r.unique_shoppers} shoppers`,
  })), { fmt: int, labelWidth: 170, width: 760 });
  const tbody = $('#table-products tbody');
  tbody.replaceChildren(...rows.map((r) => el('tr', { dataset: { sku: r.sku } },
    el('td', {}, name(r.sku)), el('td', { class: 'sku' }, r.sku),
    el('td', { class: 'num', dataset: { col: 'try_ons' } }, int(r.try_ons)),
    el('td', { class: 'num', dataset: { col: 'unique_shoppers' } }, int(r.unique_shoppers)),
    el('td', { class: 'num', dataset: { col: 'carted' } }, int(r.carted)),
    el('td', { class: 'num', dataset: { col: 'ordered' } }, int(r.ordered)),
    el('td', { class: 'num', dataset: { col: 'cart_rate' } }, r.tried ? pct(r.carted / r.tried) : '–'),
    el('td', { class: 'num', dataset: { col: 'order_rate' } }, r.tried ? pct(r.ordered / r.tried) : '–'),
    el('td', { class: 'num', dataset: { col: 'dwell_median' } }, secs(r.dwell_median_ms)),
    el('td', { class: 'num', dataset: { col: 'dwell_p90' } }, secs(r.dwell_p90_ms)),
  )));

  // Funnel (all products together)
  $('#funnel-note').textContent = `Shopper × product cohorts; cart and order counted within ${d.funnelWindow ?? '–'} h of the first try-on.`;
  funnelChart($('#chart-funnel'), tried ? [
    { label: 'Tried on', value: tried }, { label: 'Added to cart', value: carted }, { label: 'Ordered', value: ordered },
  ] : []);

  // Dwell
  rangeBars($('#chart-dwell'), d.products.filter((r) => r.dwell_median_ms != null).map((r) => ({
    label: name(r.sku), a: r.dwell_median_ms, b: r.dwell_p90_ms,
  })), { fmt: secs, names: ['median', 'p90'] });

  // Shades
  barChart($('#chart-shades'), d.shades.map((r) => {
    const s = catalog.shades.get(r.shade);
    const label = r.skin_tone_band ? `${r.skin_tone_band} · ${s?.name || r.shade}` : s?.name || r.shade;
    return { label, value: r.applications, color: s?.hex, note: `${pct(r.share)} of applications` };
  }), { fmt: int, labelWidth: hasBand(d.shades) ? 200 : 150 });

  // NPS
  divergingBars($('#chart-nps'), d.nps.map((r) => ({ label: r.channel, value: r.nps, note: `${r.responses} responses` })));
  $('#table-nps tbody').replaceChildren(...d.nps.map((r) => el('tr', { dataset: { channel: r.channel } },
    el('td', {}, r.channel), el('td', { class: 'num' }, int(r.responses)), el('td', { class: 'num' }, int(r.promoters)),
    el('td', { class: 'num' }, int(r.passives)), el('td', { class: 'num' }, int(r.detractors)),
    el('td', { class: 'num', dataset: { col: 'nps' } }, r.nps.toFixed(1)),
  )));

  // Fit gap
  const fg = d.fitgap;
  $('#fitgap-note').textContent = fg.shoppers
    ? `${fg.shoppers} shoppers with consented measurements; ${fg.shoppers_without_fit} (${pct(fg.share_without_fit)}${fg.share_without_fit_ci95 ? `, 95% CI ${pct(fg.share_without_fit_ci95[0])}–${pct(fg.share_without_fit_ci95[1])}` : ''}) have no frame in the catalog that fits (${fg.fit_definition}).`
    : 'No consented face measurements yet.';
  fitGapChart($('#chart-fitgap'), fg, { width: 1100, height: 260 });
  // Each gap with its evidence: the sample size, and a recommendation (with its ~95% interval)
  // only from the service's minimum number of shoppers on.
  $('#fitgap-gaps').replaceChildren(...(fg.gaps || []).map((g) => {
    const who = `${g.shoppers} ${g.shoppers === 1 ? 'shopper' : 'shoppers'}`;
    const ci = g.suggested_frame_width_ci95_mm;
    const advice = g.suggested_frame_width_mm != null && g.recommended !== false
      ? `design a ${g.suggested_frame_width_mm} mm frame${ci ? ` (95% CI ${ci[0]}–${ci[1]} mm)` : ''}`
      : `no recommendation: ${g.reason || `fewer than ${fg.min_shoppers ?? '?'} shoppers`}`;
    return el('li', { dataset: { recommended: g.recommended === false ? '0' : '1', shoppers: g.shoppers } },
      `${g.from_mm}–${g.to_mm} mm: ${who} without a fitting frame (n = ${g.shoppers}) → ${advice}`);
  }));
}

const hasBand = (rows) => rows.some((r) => r.skin_tone_band);
const sumOf = (rows, key) => (rows.some((r) => r[key] != null) ? rows.reduce((a, r) => a + Number(r[key] || 0), 0) : null);

async function download(report, fmt) {
  const extra = { format: fmt, ...(report === 'products' ? { group_by: '' } : {}), ...(report === 'shades' ? shadeParams() : {}) };
  try {
    const res = await state.analyst.get(reportUrl(report, extra), { as: 'response' });
    const blob = await res.blob();
    const cd = res.headers.get('content-disposition') || '';
    const filename = /filename="?([^";]+)"?/.exec(cd)?.[1] || `${report}.${fmt}`;
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    $('#status').textContent = `Export failed: ${err.message}`;
  }
}

function addExportButtons() {
  for (const section of document.querySelectorAll('section[data-report]')) {
    const slot = section.querySelector('.exports');
    if (!slot) continue;
    const report = section.dataset.report;
    slot.replaceChildren(...EXPORT_FORMATS.map(([fmt, label]) => el('button', {
      type: 'button', class: 'btn small', dataset: { export: `${report}.${fmt}` },
      title: `Download the ${report} report as ${label}`, onclick: () => download(report, fmt),
    }, label)));
  }
}

async function connect(key) {
  state.analyst = new Api(state.config, key);
  try {
    await load();
  } catch (err) {
    const denied = err instanceof ApiError && (err.status === 401 || err.status === 403);
    $('#status').textContent = denied ? '' : `Could not load: ${err.message}`;
    if (denied) {
      signOut();
      $('#welcome p').textContent = `That key was refused: ${err.message}`;
      return;
    }
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  $('#key-hint').textContent = `key ${key.slice(0, 6)}…`;
  for (const id of ['#filters', '#board', '#signed-in']) $(id).hidden = false;
  $('#key-form').hidden = true;
  $('#welcome').hidden = true;
  loadStores();
}

function signOut() {
  sessionStorage.removeItem(KEY_STORAGE);
  state.analyst = null;
  for (const id of ['#filters', '#board', '#signed-in']) $(id).hidden = true;
  $('#key-form').hidden = false;
  $('#welcome').hidden = false;
}

async function main() {
  state.config = await loadConfig();
  addExportButtons();
  $('#key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    connect($('#key').value.trim());
    $('#key').value = '';
  });
  $('#sign-out').addEventListener('click', signOut);
  $('#shade-by-tone').addEventListener('change', () => {
    load().catch((err) => { $('#status').textContent = `Could not load: ${err.message}`; });
  });
  $('#filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    load().catch((err) => { $('#status').textContent = `Could not load: ${err.message}`; });
  });
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) await connect(saved);
  document.body.dataset.ready = '1';
}

main().catch((err) => {
  console.error(err);
  $('#status').textContent = `Dashboard failed to start: ${err.message}`;
});
