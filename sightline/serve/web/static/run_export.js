/* The Run page's Export card (GET and POST /api/runs/{id}/exports): the formats of `sightline
 * export`, the export in progress, each file's check beside PyTorch (export/report.json) and the
 * files to download. The server checks and writes everything; this page only shows it. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const POLL_MS = 1500;
  let runId = null;
  let base = null;

  const size = (n) => (n >= 1e6 ? (n / 1e6).toFixed(1) + ' MB' : Math.max(1, Math.round(n / 1e3)) + ' kB');
  const pct = (x) => (SL.isNum(x) ? SL.pct(x, 2) : '–');

  function renderFormats(formats) {
    const box = SL.$('export-formats');
    if (box.firstChild) return; // the user's ticks stay through the refreshes
    for (const [name, text] of Object.entries(formats || {})) {
      box.appendChild(el('label', {class: 'check'},
        el('input', {type: 'checkbox', name: 'export-format', value: name, checked: name === 'onnx'}),
        name, el('span', {class: 'muted'}, ' — ' + text)));
    }
  }

  function renderReport(report) {
    const box = SL.clear(SL.$('export-report'));
    const rows = (report && report.exports) || [];
    if (!rows.length) {
      box.appendChild(el('p', {class: 'muted'}, 'Not exported yet.'));
      return;
    }
    const head = ['File', 'Format', 'Size', 'Top-1 agreement with PyTorch', 'Accuracy (PyTorch)', 'Checked on', 'Bar'];
    const body = rows.map((e) => {
      const p = e.parity || {};
      return el('tr', null,
        el('td', null, e.path), el('td', null, e.format), el('td', null, size(e.size_bytes)),
        el('td', null, pct(p.top1_agreement)),
        el('td', null, SL.isNum(p.accuracy) ? pct(p.accuracy) + ' (' + pct(p.reference_accuracy) + ')' : 'no labels'),
        el('td', null, p.images ? p.images + ' ' + p.source : 'not checked'), el('td', null, e.bar));
    });
    box.appendChild(el('div', {class: 'table-wrap'}, el('table', {id: 'export-table'},
      el('thead', null, el('tr', null, ...head.map((h) => el('th', null, h)))), el('tbody', null, ...body))));
  }

  function render(d) {
    renderFormats(d.formats);
    const t = d.task;
    SL.setText('export-state', !t ? ''
      : t.state === 'running' ? 'Exporting ' + t.formats.join(', ') + '… each format is checked beside PyTorch.'
        : t.state === 'done' ? 'Exported ' + t.formats.join(', ') + '.' : '');
    SL.showError('export-error', t && t.state === 'failed' ? SL.webText(t.error || 'failed') : null);
    SL.$('export-start').disabled = Boolean(t && t.state === 'running');
    renderReport(d.report);
    const files = SL.clear(SL.$('export-files'));
    for (const f of d.files || []) {
      files.appendChild(el('a', {class: 'button secondary', href: base + '/exports/' + encodeURIComponent(f.name),
        download: runId + '-' + f.name}, f.name + ' (' + size(f.size_bytes) + ')'));
    }
    if (t && t.state === 'running') window.setTimeout(load, POLL_MS);
  }

  async function load() {
    try {
      render(await SL.api(base + '/exports'));
    } catch (err) {
      SL.showError('export-error', 'Cannot load the exports: ' + err.message);
    }
  }

  async function start() {
    const formats = [...document.querySelectorAll('input[name=export-format]:checked')].map((b) => b.value);
    if (!formats.length) {
      SL.showError('export-error', 'Tick at least one format.');
      return;
    }
    const body = {formats};
    const drop = SL.$('export-accept-drop').value.trim();
    if (drop) body.accept_drop = Number(drop);
    SL.showError('export-error', null);
    try {
      await SL.api(base + '/exports', {method: 'POST', json: body});
      load();
    } catch (err) {
      SL.showError('export-error', err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    runId = SL.$('main').dataset.run;
    base = '/api/runs/' + encodeURIComponent(runId);
    SL.$('export-start').addEventListener('click', start);
    load();
  });
})();
