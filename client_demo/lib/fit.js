// The fit panel's numbers from the live stream: every processed frame carries `measurements`
// and `fit`, but a per-frame value would flicker (PD moving by tenths of a millimetre, a frame
// badge coming and going at the edge of the size band). A face does not change, so the panel
// shows a running median of the recent frames, reliable ones only once there are any, and is
// redrawn at most once per `intervalMs`.

const median = (values) => {
  const v = values.filter((x) => x != null).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
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

  // The running median: PD and face width each as the median of the window; the recommended
  // width band and size band are the server's for the median-width frame (both follow from
  // the face width by the server's rule, so they stay consistent with the width shown).
  current() {
    const samples = this.reliable.length ? this.reliable : this.rough;
    if (!samples.length) return null;
    const byWidth = samples.filter((s) => s.width != null).sort((a, b) => a.width - b.width);
    const mid = byWidth.length ? byWidth[(byWidth.length - 1) >> 1] : samples[samples.length - 1];
    return {
      pd: median(samples.map((s) => s.pd)),
      width: mid.width,
      sizeBand: mid.sizeBand,
      range: mid.range,
      reliable: this.reliable.length > 0,
      flags: samples[samples.length - 1].flags,
      verdict: null,
      fitting: null, // decided from the catalog's frame widths vs `range` (ui.js fits)
      frames: samples.length,
    };
  }
}
