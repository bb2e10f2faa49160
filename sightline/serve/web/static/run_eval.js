/* The Run page's evaluation sections: per-class metrics, the confusion matrix (a cell shows
 * its test images), the largest losses and the saved plots. SL.runEval.render(detail, base, runId). */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const CELL_LIMIT = 60;
  const LOSS_LIMIT = 24;
  let base = null;
  let runId = null;

  function noEvaluation(name) {
    return el('p', {class: 'muted'}, 'No test evaluation yet. It is made at the end of training, or run ',
      el('code', null, 'sightline evaluate ' + name), '.');
  }

  function renderPerClass(d) {
    const box = SL.clear(SL.$('per-class'));
    if (!Array.isArray(d.per_class) || !d.per_class.length) { box.appendChild(noEvaluation(d.name)); return; }
    const table = el('table', {class: 'table stack', id: 'per-class-table'});
    box.appendChild(el('div', {class: 'table-wrap'}, table));
    const metric = (key) => ({key, label: key[0].toUpperCase() + key.slice(1), class: 'num', cell: (r) => SL.num(r[key], 3)});
    SL.sortableTable(table, [
      {key: 'class', label: 'Class', class: 'name'},
      metric('precision'), metric('recall'), metric('f1'),
      {key: 'support', label: 'Support', class: 'num key', cell: (r) => SL.int(r.support)},
    ]).setRows(d.per_class);
  }

  // Cell shading through the CSSOM (allowed by the CSP): green on the diagonal (right),
  // red off it (wrong), stronger for a larger share of the true class's images.
  function shade(button, count, rowTotal, diagonal) {
    const share = rowTotal > 0 ? count / rowTotal : 0;
    if (count === 0) return;
    const alpha = diagonal ? 0.12 + 0.78 * share : 0.15 + 0.85 * Math.min(1, share * 2);
    button.style.backgroundColor = diagonal ? `rgba(22, 163, 74, ${alpha.toFixed(3)})` : `rgba(220, 38, 38, ${alpha.toFixed(3)})`;
    if (alpha > 0.55) button.classList.add('dark');
  }

  function renderConfusion(d) {
    const box = SL.clear(SL.$('confusion'));
    SL.clear(SL.$('confusion-images'));
    const matrix = d.confusion;
    if (!Array.isArray(matrix) || !matrix.length) { box.appendChild(noEvaluation(d.name)); return; }
    const names = Array.isArray(d.classes) && d.classes.length === matrix.length ? d.classes.map(String) : matrix.map((_, i) => String(i));
    const table = el('table', {class: 'confusion', id: 'confusion-table'});
    const head = el('tr', null, el('th', {class: 'corner muted'}, 'true ↓ predicted →'));
    names.forEach((n) => head.appendChild(el('th', {scope: 'col', title: n}, n)));
    table.appendChild(el('thead', null, head));
    const body = el('tbody');
    matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0);
      const tr = el('tr', null, el('th', {class: 'row-head', scope: 'row', title: names[i]}, names[i]));
      row.forEach((count, j) => {
        const button = el('button', {type: 'button', class: 'cell', dataset: {true: i, pred: j},
          title: `true ${names[i]}, predicted ${names[j]}: ${count}`, disabled: count === 0,
          on: {click: (e) => showCell(e.currentTarget, i, j, names)}}, String(count));
        shade(button, count, total, i === j);
        tr.appendChild(el('td', null, button));
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    box.appendChild(el('div', {class: 'table-wrap'}, table));
  }

  function imageTile(item, caption) {
    const img = el('img', {src: base + '/test-images/' + item.index + '.png', alt: 'test image ' + item.index, loading: 'lazy'});
    const href = '/classify?run=' + encodeURIComponent(runId) + '&test=' + item.index;
    return el('figure', {class: 'tile'}, el('a', {href, title: 'inspect test image #' + item.index}, img),
      el('figcaption', null, caption));
  }

  async function showCell(button, i, j, names) {
    document.querySelectorAll('#confusion-table button.selected').forEach((b) => b.classList.remove('selected'));
    button.classList.add('selected');
    const box = SL.clear(SL.$('confusion-images'));
    box.appendChild(el('p', {class: 'muted'}, 'Loading…'));
    try {
      const data = await SL.api(`${base}/test-images?true=${i}&pred=${j}&limit=${CELL_LIMIT}`);
      const items = data.items || [];
      const shown = items.length < data.count ? ` (the first ${items.length} of ${data.count})` : '';
      const mark = i === j ? el('span', {class: 'right'}, '✓ right') : el('span', {class: 'wrong'}, '✗ wrong');
      SL.clear(box).append(
        el('h3', null, `True ${names[i]}, predicted ${names[j]}: ${data.count} image${data.count === 1 ? '' : 's'}${shown} `, mark),
        el('div', {class: 'image-grid', id: 'cell-images'}, items.map((it) => imageTile(it, SL.pct(it.confidence) + ' sure'))));
    } catch (err) {
      SL.clear(box).appendChild(el('p', {class: 'error-text'}, err.message));
    }
  }

  async function renderTopLosses(d) {
    const box = SL.clear(SL.$('top-losses'));
    if (!d.evaluation && !d.confusion) { box.appendChild(noEvaluation(d.name)); return; }
    box.appendChild(el('p', {class: 'muted'}, 'Loading…'));
    try {
      const data = await SL.api(`${base}/test-images?order=loss&limit=${LOSS_LIMIT}`);
      const tiles = (data.items || []).map((it) => {
        const right = it.true === it.pred;
        return imageTile(it, el('span', null,
          el('span', {class: right ? 'right' : 'wrong'}, it.pred_label), ' (' + SL.pct(it.confidence, 0) + ')',
          el('br'), 'true: ' + it.true_label, el('br'), 'loss ' + SL.num(it.loss, 2)));
      });
      SL.clear(box).appendChild(tiles.length ? el('div', {class: 'image-grid', id: 'top-loss-images'}, tiles)
        : el('p', {class: 'muted'}, 'No test images.'));
    } catch (err) {
      SL.clear(box).appendChild(el('p', {class: 'muted'}, err.message));
    }
  }

  function renderPlots(d) {
    const box = SL.clear(SL.$('run-plots'));
    const plots = Array.isArray(d.plots) ? d.plots.slice() : [];
    if (!plots.length) {
      box.appendChild(el('p', {class: 'muted span-all'}, 'No plots yet: they are drawn at the end of training, or run ',
        el('code', null, 'sightline report ' + d.name), '.'));
      return;
    }
    // In the server's order, with the report's captions: one registry of figures for both.
    const captions = d.plot_captions || {};
    for (const name of plots) {
      const src = base + '/plots/' + encodeURIComponent(name) + '.png';
      box.appendChild(el('figure', {dataset: {plot: name}},
        el('a', {href: src, target: '_blank', rel: 'noopener'}, el('img', {src, alt: name + ' plot', loading: 'lazy'})),
        el('figcaption', null, captions[name] || name.replace(/[-_]/g, ' '))));
    }
  }

  SL.runEval = {
    render(detail, apiBase, id) {
      base = apiBase;
      runId = id;
      renderPerClass(detail);
      renderConfusion(detail);
      renderTopLosses(detail);
      renderPlots(detail);
    },
  };
})();
