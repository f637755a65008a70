// Small SVG charts for the dashboard, no library: horizontal bars, a funnel, a histogram with
// markers (fit gap), and diverging bars (NPS). Every mark carries data-label / data-value so
// the numbers drawn can be checked (tests read them) and read by screen readers via <title>.

const NS = 'http://www.w3.org/2000/svg';
const PALETTE = ['#1f5eff', '#17a2b8', '#8e44ad', '#e67e22', '#27ae60', '#c0392b', '#2c3e50', '#d35400'];

function svg(tag, attrs = {}, ...children) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) n.setAttribute(k, v);
  for (const c of children) if (c != null) n.append(c.nodeType ? c : document.createTextNode(String(c)));
  return n;
}

function titled(node, text) {
  node.append(svg('title', {}, text));
  return node;
}

function empty(root, text = 'No data for these filters.') {
  root.replaceChildren();
  const p = document.createElement('p');
  p.className = 'empty';
  p.textContent = text;
  root.append(p);
}

// rows: [{label, value, color?, note?}]; value >= 0. fmt formats the value label.
export function barChart(root, rows, { fmt = String, labelWidth = 150, barHeight = 22, width = 560, max } = {}) {
  if (!rows.length) return empty(root);
  const gap = 8;
  const top = 4;
  const valueWidth = 70;
  const plotW = width - labelWidth - valueWidth;
  const hi = max ?? Math.max(...rows.map((r) => r.value), 1e-9);
  const height = top + rows.length * (barHeight + gap);
  const s = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart bar-chart' });
  rows.forEach((r, i) => {
    const y = top + i * (barHeight + gap);
    const w = hi > 0 ? Math.max(0, (r.value / hi) * plotW) : 0;
    const g = svg('g', { class: 'bar', 'data-label': r.label, 'data-value': r.value });
    g.append(
      svg('text', { x: labelWidth - 8, y: y + barHeight * 0.7, 'text-anchor': 'end', class: 'label' }, r.label),
      titled(svg('rect', { x: labelWidth, y, width: w.toFixed(1), height: barHeight, rx: 3, fill: r.color || PALETTE[i % PALETTE.length] }),
        `${r.label}: ${fmt(r.value)}${r.note ? ` (${r.note})` : ''}`),
      svg('text', { x: labelWidth + w + 6, y: y + barHeight * 0.7, class: 'value' }, fmt(r.value)),
    );
    s.append(g);
  });
  root.replaceChildren(s);
  return s;
}

// Two values per row (e.g. median and p90 dwell): a thick bar and a thin one behind it.
export function rangeBars(root, rows, { fmt = String, labelWidth = 150, width = 560, names = ['p50', 'p90'] } = {}) {
  if (!rows.length) return empty(root);
  const barHeight = 22;
  const gap = 8;
  const valueWidth = 110;
  const plotW = width - labelWidth - valueWidth;
  const hi = Math.max(...rows.map((r) => Math.max(r.a ?? 0, r.b ?? 0)), 1e-9);
  const height = 4 + rows.length * (barHeight + gap) + 18;
  const s = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart range-chart' });
  rows.forEach((r, i) => {
    const y = 4 + i * (barHeight + gap);
    const wa = ((r.a ?? 0) / hi) * plotW;
    const wb = ((r.b ?? 0) / hi) * plotW;
    const g = svg('g', { class: 'bar', 'data-label': r.label, 'data-a': r.a ?? '', 'data-b': r.b ?? '' });
    g.append(
      svg('text', { x: labelWidth - 8, y: y + barHeight * 0.7, 'text-anchor': 'end', class: 'label' }, r.label),
      titled(svg('rect', { x: labelWidth, y: y + 4, width: wb.toFixed(1), height: barHeight - 8, rx: 3, fill: '#b9c8ff' }), `${r.label} ${names[1]}: ${fmt(r.b)}`),
      titled(svg('rect', { x: labelWidth, y: y + 7, width: wa.toFixed(1), height: barHeight - 14, rx: 2, fill: '#1f5eff' }), `${r.label} ${names[0]}: ${fmt(r.a)}`),
      svg('text', { x: labelWidth + Math.max(wa, wb) + 6, y: y + barHeight * 0.7, class: 'value' }, `${fmt(r.a)} / ${fmt(r.b)}`),
    );
    s.append(g);
  });
  const ly = height - 6;
  s.append(
    svg('rect', { x: labelWidth, y: ly - 9, width: 14, height: 6, fill: '#1f5eff' }),
    svg('text', { x: labelWidth + 18, y: ly - 3, class: 'legend' }, names[0]),
    svg('rect', { x: labelWidth + 80, y: ly - 10, width: 14, height: 8, fill: '#b9c8ff' }),
    svg('text', { x: labelWidth + 98, y: ly - 3, class: 'legend' }, names[1]),
  );
  root.replaceChildren(s);
  return s;
}

// steps: [{label, value}] from widest to narrowest; shows each step's share of the first.
// Labels sit in their own column and the numbers right of the plot, in ink, so a narrow bar
// never clips them (white text on a bar only fits a wide bar).
export function funnelChart(root, steps, { width = 560, labelWidth = 120, valueWidth = 110 } = {}) {
  if (!steps.length || !steps[0].value) return empty(root);
  const h = 36;
  const gap = 10;
  const first = steps[0].value;
  const plotW = width - labelWidth - valueWidth;
  const height = steps.length * (h + gap);
  const s = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart funnel-chart' });
  steps.forEach((st, i) => {
    const w = Math.max(2, (st.value / first) * plotW);
    const x = labelWidth + (plotW - w) / 2;
    const y = i * (h + gap);
    const pct = `${((100 * st.value) / first).toFixed(1)}%`;
    const g = svg('g', { class: 'step', 'data-label': st.label, 'data-value': st.value });
    g.append(
      svg('text', { x: labelWidth - 8, y: y + h / 2 + 4, 'text-anchor': 'end', class: 'label step-label' }, st.label),
      titled(svg('rect', { x, y, width: w, height: h, rx: 6, fill: PALETTE[i % PALETTE.length], opacity: 0.9 }), `${st.label}: ${st.value} (${pct})`),
      svg('text', { x: labelWidth + plotW + 8, y: y + h / 2 + 4, class: 'value' }, `${st.value} · ${pct}`),
    );
    s.append(g);
  });
  root.replaceChildren(s);
  return s;
}

// Fit gap: shoppers per face-width bin; bins with no fitting frame in red; catalog frame
// widths as ticks under the axis.
export function fitGapChart(root, report, { width = 640, height = 240 } = {}) {
  const bins = report?.bins || [];
  if (!bins.length) return empty(root, 'No consented face measurements for these filters.');
  const left = 40;
  const right = 10;
  const top = 20; // room for the count above the tallest bar
  const axisY = height - 60;
  // Frames sit on the face-width axis at the face width they suit (the API says where).
  const at = (f) => f.suits_face_width_mm ?? f.frame_width_mm;
  const lo = Math.min(bins[0].lo_mm, ...(report.frames || []).map(at));
  const hiMm = Math.max(bins[bins.length - 1].hi_mm, ...(report.frames || []).map(at));
  const x = (mm) => left + ((mm - lo) / Math.max(1e-9, hiMm - lo)) * (width - left - right);
  const maxN = Math.max(...bins.map((b) => b.shoppers), 1);
  const y = (n) => axisY - (n / maxN) * (axisY - top);
  const s = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart fitgap-chart' });
  s.append(svg('line', { x1: left, x2: width - right, y1: axisY, y2: axisY, class: 'axis' }));
  for (const b of bins) {
    const x0 = x(b.lo_mm);
    const x1 = x(b.hi_mm);
    const g = svg('g', {
      class: `bin${b.gap ? ' gap' : ''}`,
      'data-lo': b.lo_mm,
      'data-hi': b.hi_mm,
      'data-value': b.shoppers,
      'data-gap': b.gap ? '1' : '0',
    });
    g.append(
      titled(
        svg('rect', { x: x0 + 0.5, y: y(b.shoppers), width: Math.max(1, x1 - x0 - 1), height: axisY - y(b.shoppers), fill: b.gap ? '#d64545' : '#1f5eff' }),
        `${b.lo_mm}–${b.hi_mm} mm: ${b.shoppers} shoppers${b.gap ? ', no frame fits' : `, ${b.fitting_frames} frames fit`}`,
      ),
    );
    if (b.shoppers) g.append(svg('text', { x: (x0 + x1) / 2, y: y(b.shoppers) - 3, 'text-anchor': 'middle', class: 'value small' }, b.shoppers));
    s.append(g);
  }
  // Axis labels every ~10 mm.
  for (let mm = Math.ceil(lo / 10) * 10; mm <= hiMm; mm += 10) {
    s.append(svg('text', { x: x(mm), y: axisY + 14, 'text-anchor': 'middle', class: 'tick' }, mm));
  }
  s.append(svg('text', { x: left, y: axisY + 30, class: 'legend' }, 'face width (mm) · ticks below: catalog frames at the face width they suit'));
  for (const f of report.frames || []) {
    s.append(
      titled(svg('line', { x1: x(at(f)), x2: x(at(f)), y1: axisY + 36, y2: axisY + 50, class: 'frame-tick', 'data-sku': f.sku, 'data-value': f.frame_width_mm }),
        `${f.sku}: ${f.frame_width_mm} mm frame, suits a ${at(f)} mm face`),
    );
  }
  root.replaceChildren(s);
  return s;
}

// Diverging bars around zero for scores in [-100, 100] (NPS). The value labels have their own
// margin on both sides of the plot, so a -100 never runs into the row's label.
export function divergingBars(root, rows, { width = 560, labelWidth = 120, valueWidth = 44, fmt = (v) => v.toFixed(0) } = {}) {
  if (!rows.length) return empty(root);
  const h = 22;
  const gap = 8;
  const left = labelWidth + valueWidth;
  const plotW = width - left - valueWidth;
  const zero = left + plotW / 2;
  const height = rows.length * (h + gap) + 16;
  const s = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart nps-chart' });
  s.append(svg('line', { x1: zero, x2: zero, y1: 0, y2: height - 14, class: 'axis' }));
  s.append(
    svg('text', { x: left, y: height - 2, 'text-anchor': 'middle', class: 'tick' }, '−100'),
    svg('text', { x: zero, y: height - 2, 'text-anchor': 'middle', class: 'tick' }, '0'),
    svg('text', { x: left + plotW, y: height - 2, 'text-anchor': 'middle', class: 'tick' }, '+100'),
  );
  rows.forEach((r, i) => {
    const yy = i * (h + gap);
    const w = (Math.min(100, Math.abs(r.value)) / 100) * (plotW / 2);
    const x0 = r.value >= 0 ? zero : zero - w;
    const g = svg('g', { class: 'bar', 'data-label': r.label, 'data-value': r.value });
    g.append(
      svg('text', { x: labelWidth - 8, y: yy + h * 0.7, 'text-anchor': 'end', class: 'label' }, r.label),
      titled(svg('rect', { x: x0, y: yy, width: Math.max(1, w), height: h, rx: 3, fill: r.value >= 0 ? '#17804b' : '#d64545' }), `${r.label}: NPS ${fmt(r.value)}${r.note ? ` (${r.note})` : ''}`),
      svg('text', { x: r.value >= 0 ? x0 + w + 4 : x0 - 4, y: yy + h * 0.7, 'text-anchor': r.value >= 0 ? 'start' : 'end', class: 'value' }, fmt(r.value)),
    );
    s.append(g);
  });
  root.replaceChildren(s);
  return s;
}
