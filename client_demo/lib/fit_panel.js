// The fit panel shows the server's fit advice; nothing here decides what fits.
// - Numbers (PD, face width, size band, recommended frame width): the server's per-frame
//   `measurements` and `fit`. Per frame they would flicker (PD moving by tenths of a
//   millimetre), and a face does not change, so the panel shows a running median of the recent
//   frames, reliable ones once there are any, redrawn at most once per `intervalMs`.
// - Frames that fit (listed here, badged in the rail): the server's answer to
//   GET /v1/products?face_width_mm=<the width shown>.
// - Verdict for the selected frame: the server's `fit.verdict` for the frame it drew.
import { normalizeProducts } from './api.js';
import { state } from './state.js';
import { $ } from './ui.js';

const median = (values) => {
  const v = values.filter((x) => x != null).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
};

// The middle one of `samples` by face width (the sample whose server advice is shown).
const middleByWidth = (samples) => {
  const byWidth = samples.filter((s) => s.width != null).sort((a, b) => a.width - b.width);
  return byWidth.length ? byWidth[(byWidth.length - 1) >> 1] : null;
};

export class FitSmoother {
  constructor({ window = 90, roughWindow = 15, intervalMs = 1000 } = {}) {
    this.window = window; // reliable frames kept (a few seconds of stream)
    this.roughWindow = roughWindow; // frames kept while none was reliable yet
    this.intervalMs = intervalMs;
    this.reset();
  }

  reset() {
    this.reliable = [];
    this.rough = [];
    this.shownAt = -Infinity;
    this.shownReliable = false;
    this.samples = 0;
  }

  // One frame's normalized fit (api.js normalizeFit). Returns the fit to show when the panel
  // is due for an update, else null: the first frame at once, the first reliable frame at once
  // (a rough estimate becomes a measurement), otherwise at most once per interval.
  add(fit, now = performance.now()) {
    if (!fit) return null;
    this.samples += 1;
    const list = fit.reliable ? this.reliable : this.rough;
    list.push(fit);
    if (list.length > (fit.reliable ? this.window : this.roughWindow)) list.shift();
    const upgrade = fit.reliable && !this.shownReliable;
    if (!upgrade && now - this.shownAt < this.intervalMs) return null;
    this.shownAt = now;
    const out = this.current();
    this.shownReliable = out.reliable;
    return out;
  }

  // PD as the median of the window; face width, size band and recommended width band as the
  // server sent them for the median-width frame; the verdict as the server sent it for the
  // median-width frame drawn with the latest frame's product.
  current() {
    const samples = this.reliable.length ? this.reliable : this.rough;
    if (!samples.length) return null;
    const last = samples[samples.length - 1];
    const mid = middleByWidth(samples) || last;
    const judged = middleByWidth(samples.filter((s) => s.verdict && s.sku === last.sku));
    return {
      pd: median(samples.map((s) => s.pd)),
      width: mid.width,
      sizeBand: mid.sizeBand,
      range: mid.range,
      reliable: this.reliable.length > 0,
      flags: last.flags,
      verdict: judged?.verdict ?? null,
      frameWidth: judged?.frameWidth ?? null,
      sku: judged?.sku ?? null,
      frames: samples.length,
    };
  }
}

// The catalog's frames that fit a face width, as the server says (GET /v1/products?face_width_mm).
// Asked again only when the width shown has moved by REQUERY_MM since the last answer: the
// panel stays calm and the shared demo key's rate limit is spared. One request at a time.
const REQUERY_MM = 1;

export class FittingFrames {
  constructor(api, onChange) {
    this.api = api;
    this.onChange = onChange;
    this.reset();
  }

  reset() {
    this.seq = (this.seq || 0) + 1;
    this.result = null; // {faceWidth, skus, error}
    this.pending = null;
    this.wanted = null;
  }

  update(faceWidth) {
    if (faceWidth == null) return;
    this.wanted = faceWidth;
    if (this.pending != null) return;
    if (this.result && Math.abs(faceWidth - this.result.faceWidth) < REQUERY_MM) return;
    this.fetch(faceWidth);
  }

  async fetch(faceWidth) {
    const seq = this.seq;
    this.pending = faceWidth;
    let result;
    try {
      const q = new URLSearchParams({ type: 'glasses', face_width_mm: String(faceWidth) });
      const body = await this.api.get(`${this.api.path('products')}?${q}`);
      result = { faceWidth, skus: normalizeProducts(body).map((p) => p.sku), error: null };
    } catch (err) {
      result = { faceWidth, skus: [], error: err.message };
    }
    if (seq !== this.seq) return; // reset meanwhile: a new shopper
    this.pending = null;
    this.result = result;
    this.onChange(result);
    this.update(this.wanted);
  }
}

// The service's quality flags, in words (vision.measure.FaceMeasurements).
const WHY = {
  face_too_small: 'the face is too small in the picture',
  turned_too_far: 'the face is turned too far',
  partially_outside: 'part of the face is outside the picture',
  eyes_closed: 'the eyes are closed',
  iris_mismatch: 'the eyes could not be measured consistently',
  low_score: 'the face was not found clearly',
  too_close: 'the face is too close to the camera',
  implausible_pd: 'the eye distance came out outside the adult range',
  implausible_face_width: 'the face width came out outside the adult range',
  not_converged: 'still measuring',
};

const mm = (v) => (v == null ? '–' : `${v.toFixed(1)} mm`);

export function renderFitNumbers(fit) {
  $('#fit-pd').textContent = mm(fit?.pd);
  $('#fit-width').textContent = mm(fit?.width);
  $('#fit-size').textContent = fit?.sizeBand
    ? `${fit.sizeBand}${fit.range ? ` (${Math.round(fit.range[0])}–${Math.round(fit.range[1])} mm)` : ''}`
    : '–';
}

// fitting: the server's answer ({skus, error}) or null while it is being asked.
export function renderFitNote(fit, fitting, products, source = 'camera') {
  const note = $('#fit-frames');
  if (!fit) {
    note.textContent = 'Look at the camera to measure.';
    return;
  }
  const hint = source === 'photo' ? 'a front-facing photo' : 'hold still and face the camera';
  if (fit.withheld) {
    const why = fit.flags.map((f) => WHY[f] || f.replace(/_/g, ' ')).join('; ') || 'the measurement was not reliable';
    note.textContent = `Not measured: ${why}. For a measurement: ${hint}, closer to the camera.`;
    return;
  }
  const prefix = fit.reliable ? '' : `Rough estimate (for a better one: ${hint}). `;
  if (!fitting) {
    note.textContent = `${prefix}Looking up the frames that fit you…`;
    return;
  }
  if (fitting.error) {
    note.textContent = `${prefix}The frames that fit you could not be looked up (${fitting.error}).`;
    return;
  }
  const good = products.filter((p) => fitting.skus.includes(p.sku));
  note.textContent = good.length
    ? `${prefix}Frames that fit you: ${good.map((p) => p.name).join(', ')}.`
    : `${prefix}No frame in the catalog is a close fit for your face width.`;
}

// The server's verdict on the selected frame, when the shown advice is about that frame.
export function renderVerdict(fit, selection, products) {
  const line = $('#fit-verdict');
  const about = fit?.verdict && selection.kind === 'glasses' && fit.sku === selection.sku;
  line.hidden = !about;
  if (!about) return;
  const name = products.find((p) => p.sku === fit.sku)?.name || fit.sku;
  const width = fit.frameWidth != null ? ` (${Math.round(fit.frameWidth)} mm)` : '';
  line.textContent = `${name}${width}: ${fit.verdict}.`;
}

// ---- the page's fit: state.fit (numbers) and state.fitting (frames that fit) -------------

export const smoother = new FitSmoother(); // the stream's frames; the photo is measured once
let fittingFrames = null;

// onFitting(result): a new answer on the frames that fit (the rail redraws its badges).
export function initFit(api, onFitting) {
  fittingFrames = new FittingFrames(api, (result) => {
    state.fitting = result;
    renderFitNote(state.fit, result, state.products, state.source);
    onFitting(result);
  });
}

export function updateFit(fit) {
  state.fit = fit;
  state.fitUpdates = (state.fitUpdates || 0) + 1;
  renderFitNumbers(fit);
  renderFitNote(fit, state.fitting, state.products, state.source);
  renderVerdict(fit, state.selection, state.products);
  fittingFrames.update(fit.width);
  // Opted in: the page's own events carry the measurements (the fit-gap report uses them).
  // The queue drops them again if consent is withdrawn.
  if (fit.reliable && fit.width != null && fit.pd != null) {
    state.events.measurements = {
      face_width_mm: round1(fit.width), pd_mm: round1(fit.pd), size_band: fit.sizeBand,
    };
  }
}

const round1 = (v) => Math.round(v * 10) / 10;

// A new shopper: nothing of the previous face stays.
export function resetFit() {
  smoother.reset();
  fittingFrames.reset();
  state.fit = null;
  state.fitting = null;
  renderFitNumbers(null);
  renderFitNote(null);
  renderVerdict(null, state.selection, state.products);
}
