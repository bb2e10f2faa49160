/* A small SVG line chart, no library: SL.lineChart(container, options).
 *
 * options: {title, series: [{name, points: [[x, y], ...], dashed, color, dots, thin}], xLabel,
 * yFormat: y → text, yMin, yMax, yBounds: [lo, hi], xInteger, empty: text}. Several series share the axes; the legend names
 * them; each point carries a <title> (the browser's hover tooltip). The SVG has a fixed
 * viewBox and scales to its container's width, so it is drawn once, at any screen size.
 * Empty data gives a "no data yet" box, a single point a dot on a one-unit-wide axis. */
'use strict';

(function () {
  const SL = window.SL;
  // The SVG namespace, taken from an <svg> that the HTML parser made, so that no URL-like
  // string has to be spelled in this file (the UI holds no external URL at all).
  const SVG_NS = new DOMParser().parseFromString('<svg></svg>', 'text/html').body.firstChild.namespaceURI;
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#4d7c0f', '#7c3aed', '#b45309'];
  const WIDTH = 560, H = 280;
  const M = {left: 52, right: 14, top: 12, bottom: 36};

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    for (const c of children) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return node;
  }

  // Tick labels with as few decimals as keep them apart: "94.6 %, 94.8 %", never "95 %, 95 %".
  // A yFormat takes (value, decimals); one that ignores the decimals is used as it is.
  function distinctLabels(ticks, fmt) {
    let labels = ticks.map((v) => fmt(v, 0));
    for (let d = 1; d <= 4 && new Set(labels).size < labels.length; d++) labels = ticks.map((v) => fmt(v, d));
    return labels;
  }

  // "Nice" ticks: steps of 1, 2 or 5 times a power of ten, about `count` of them.
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) return {lo: lo - 1, hi: hi + 1, ticks: [lo - 1, lo, lo + 1]};
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || 10 * mag;
    const start = Math.floor(lo / step + 1e-9) * step;
    const end = Math.ceil(hi / step - 1e-9) * step;
    const ticks = [];
    for (let v = start; v <= end + step / 2; v += step) ticks.push(+v.toPrecision(12));
    return {lo: start, hi: end, ticks};
  }

  function integerTicks(lo, hi) {
    const span = Math.max(1, hi - lo);
    const step = Math.max(1, niceTicks(0, span, 8).ticks[1] - niceTicks(0, span, 8).ticks[0]);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) ticks.push(v);
    return ticks;
  }

  SL.niceTicks = niceTicks;

  // Charts drawn, to draw again at their new width when the window's width changes a lot.
  const drawn = new Map();
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => {
      for (const [container, entry] of drawn) {
        if (!container.isConnected) drawn.delete(container);
        else if (Math.abs((container.clientWidth || 0) - entry.width) > 40) SL.lineChart(container, entry.options);
      }
    }, 200);
  });

  SL.lineChart = function (container, options) {
    const opts = options || {};
    drawn.set(container, {options: opts, width: container.clientWidth || 0});
    SL.clear(container);
    if (opts.title) container.appendChild(SL.el('p', {class: 'chart-title'}, opts.title));
    const series = (opts.series || []).map((s, i) => ({
      ...s,
      color: s.color || PALETTE[i % PALETTE.length],
      points: (s.points || []).filter((p) => SL.isNum(p[0]) && SL.isNum(p[1])),
    }));
    const all = series.flatMap((s) => s.points);
    if (!all.length) {
      container.appendChild(SL.el('div', {class: 'chart-empty'}, opts.empty || 'No data yet'));
      return;
    }
    const fmt = opts.yFormat || SL.short;
    // Drawn at the container's width (text stays ~11 px on a phone); the viewBox then scales
    // it if the window is resized later. A hidden container (no width yet) gets the default.
    const W = Math.max(300, Math.min(900, container.clientWidth || WIDTH));
    let xLo = Math.min(...all.map((p) => p[0])), xHi = Math.max(...all.map((p) => p[0]));
    if (xHi === xLo) { xLo -= opts.xInteger ? 1 : 0.5; xHi += opts.xInteger ? 1 : 0.5; }
    let yLo = opts.yMin !== undefined ? opts.yMin : Math.min(...all.map((p) => p[1]));
    let yHi = opts.yMax !== undefined ? opts.yMax : Math.max(...all.map((p) => p[1]));
    if (yHi === yLo) { yLo -= Math.abs(yLo) * 0.1 || 0.5; yHi += Math.abs(yHi) * 0.1 || 0.5; }
    const yt = niceTicks(yLo, yHi, 5);
    if (opts.yMin === undefined) yLo = yt.lo;
    if (opts.yMax === undefined) yHi = yt.hi;
    if (opts.yBounds) { // e.g. [0, 1] for accuracies: no axis up to 110 %
      yLo = Math.max(yLo, opts.yBounds[0]);
      yHi = Math.min(yHi, opts.yBounds[1]);
    }
    const yTicks = yt.ticks.filter((v) => v >= yLo - 1e-9 && v <= yHi + 1e-9);
    const xTicks = opts.xInteger ? integerTicks(xLo, xHi) : niceTicks(xLo, xHi, 6).ticks.filter((v) => v >= xLo && v <= xHi);

    const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
    const sx = (x) => M.left + ((x - xLo) / (xHi - xLo)) * pw;
    const sy = (y) => M.top + (1 - (y - yLo) / (yHi - yLo)) * ph;

    const root = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title || 'chart'});
    const yLabels = distinctLabels(yTicks, fmt);
    yTicks.forEach((v, i) => {
      root.appendChild(svg('line', {class: 'grid-line', x1: M.left, x2: W - M.right, y1: sy(v), y2: sy(v)}));
      root.appendChild(svg('text', {class: 'axis-text y-tick', x: M.left - 6, y: sy(v) + 4, 'text-anchor': 'end'}, yLabels[i]));
    });
    for (const v of xTicks) {
      root.appendChild(svg('line', {class: 'axis-line', x1: sx(v), x2: sx(v), y1: H - M.bottom, y2: H - M.bottom + 4}));
      root.appendChild(svg('text', {class: 'axis-text', x: sx(v), y: H - M.bottom + 16, 'text-anchor': 'middle'}, SL.short(v)));
    }
    root.appendChild(svg('line', {class: 'axis-line', x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom}));
    root.appendChild(svg('line', {class: 'axis-line', x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom}));
    if (opts.xLabel) {
      root.appendChild(svg('text', {class: 'axis-text', x: M.left + pw / 2, y: H - 4, 'text-anchor': 'middle'}, opts.xLabel));
    }

    for (const s of series) {
      if (!s.points.length) continue;
      const pts = s.points.slice().sort((a, b) => a[0] - b[0]);
      const d = pts.map((p, i) => (i ? 'L' : 'M') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1)).join(' ');
      root.appendChild(svg('path', {d, fill: 'none', stroke: s.color, 'stroke-width': s.thin ? 1.2 : 2,
        'stroke-dasharray': s.dashed ? '6 4' : null, 'stroke-linejoin': 'round', opacity: s.thin ? 0.7 : null}));
      if (s.dots === false || (pts.length > 60 && s.dots !== true)) continue;
      for (const p of pts) {
        const dot = svg('circle', {cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: pts.length === 1 ? 4 : 3, fill: s.color});
        dot.appendChild(svg('title', null, `${s.name} · ${opts.xLabel || 'x'} ${SL.short(p[0])}: ${fmt(p[1])}`));
        root.appendChild(dot);
      }
    }
    container.appendChild(root);

    const legend = SL.el('div', {class: 'legend'});
    for (const s of series) {
      const swatch = SL.el('span', {class: 'swatch' + (s.dashed ? ' dashed' : '')});
      swatch.style.backgroundColor = s.color; // CSSOM: allowed by the CSP
      swatch.style.borderColor = s.color;
      legend.appendChild(SL.el('span', {class: 'legend-item'}, swatch, s.name));
    }
    container.appendChild(legend);
  };
})();
