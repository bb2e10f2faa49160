/* The Runs page (/): every run in a sortable, filterable table; compare the curves of the
 * runs ticked; delete one (after a confirm). */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  let runs = [];
  const selected = new Set();
  let table = null;

  // "T-shirt/top, Trouser, Pullover +7": a class list that fits in a table cell.
  function shortClasses(classes) {
    if (!Array.isArray(classes) || !classes.length) return 'all';
    const names = classes.map(String);
    return names.length <= 3 ? names.join(', ') : names.slice(0, 3).join(', ') + ' +' + (names.length - 3);
  }

  // The value the best epoch was chosen by, its metric named: "val. accuracy 91.3%", or
  // "train loss 0.2100" for a run that chose by a training number (never shown as a
  // validation one), with "no validation split" where the run has none.
  function best(run) {
    const text = SL.bestText(run);
    if (!text) return '–';
    const none = SL.hasValidation(run) === false;
    const why = SL.validated(run) ? '' : none ? ': the run has no validation split' : ': a training number, not a validation one';
    return el('span', {title: 'epoch ' + run.best_epoch + ' was kept for its ' + SL.metricName(run.monitor) + why},
      text, none ? el('span', {class: 'muted'}, ' (no validation split)') : null);
  }

  function checkbox(run) {
    return el('input', {type: 'checkbox', class: 'run-check', 'aria-label': 'select ' + run.name,
      checked: selected.has(run.name), on: {change: (e) => {
        if (e.target.checked) selected.add(run.name); else selected.delete(run.name);
        updateCompareButton();
      }}});
  }

  const COLUMNS = [
    {key: 'select', label: '', sortable: false, class: 'check-cell', cell: checkbox},
    {key: 'name', label: 'Run', class: 'name', cell: (r) => el('a', {href: SL.runUrl(r.name)}, r.name)},
    {key: 'dataset', label: 'Dataset', class: 'wrap', value: (r) => SL.dataName(r.dataset),
      cell: (r) => el('span', {title: r.dataset || null}, SL.dataName(r.dataset))},
    {key: 'classes', label: 'Classes', class: 'wrap', value: (r) => shortClasses(r.classes), cell: (r) => shortClasses(r.classes)},
    {key: 'model', label: 'Model'},
    {key: 'epochs_done', label: 'Epochs', class: 'num', cell: (r) => (r.epochs_done ?? '–') + '/' + (r.epochs ?? '–')},
    {key: 'best_value', label: 'Best', class: 'num', cell: best,
      value: (r) => (SL.validated(r) ? r.best_value : null)},
    {key: 'test_accuracy', label: 'Test acc.', class: 'num key', cell: (r) => SL.pct(r.test_accuracy)},
    {key: 'status', label: 'Status', class: 'key', cell: (r) => SL.badge(r.status, r.error || null)},
    {key: 'created', label: 'Created', class: 'nowrap', value: (r) => SL.timestamp(r.created), cell: (r) => SL.date(r.created)},
    {key: 'actions', label: '', sortable: false, class: 'action-cell', cell: (r) => el('button', {type: 'button', class: 'danger small delete-run',
      dataset: {run: r.name}, on: {click: () => deleteRun(r.name)}}, 'Delete')},
  ];

  function matches(run, text) {
    if (!text) return true;
    const hay = [run.name, SL.dataName(run.dataset), run.model, run.status, shortClasses(run.classes)].join(' ').toLowerCase();
    return text.toLowerCase().split(/\s+/).every((word) => hay.includes(word));
  }

  function render() {
    const text = SL.$('runs-filter').value.trim();
    const shown = runs.filter((r) => matches(r, text));
    table.setRows(shown);
    SL.$('runs-count').textContent = shown.length === runs.length
      ? runs.length + (runs.length === 1 ? ' run' : ' runs')
      : shown.length + ' of ' + runs.length + ' runs';
    SL.$('runs-empty').hidden = runs.length > 0;
    SL.$('runs-card').hidden = runs.length === 0;
  }

  function updateCompareButton() {
    for (const name of [...selected]) if (!runs.some((r) => r.name === name)) selected.delete(name);
    const button = SL.$('compare-runs');
    button.disabled = selected.size < 2;
    button.textContent = selected.size >= 2 ? 'Compare ' + selected.size + ' runs' : 'Compare';
  }

  async function deleteRun(name) {
    if (!window.confirm('Delete run "' + name + '" and all its files? This cannot be undone.')) return;
    SL.showError('runs-error', null);
    try {
      await SL.api('/api/runs/' + encodeURIComponent(name), {method: 'DELETE'});
      runs = runs.filter((r) => r.name !== name);
      selected.delete(name);
      updateCompareButton();
      render();
    } catch (err) {
      SL.showError('runs-error', 'Cannot delete ' + name + ': ' + err.message);
    }
  }

  async function compare() {
    const names = [...selected];
    const panel = SL.$('compare-panel');
    panel.hidden = false;
    SL.showError('runs-error', null);
    const accBox = SL.$('compare-accuracy'), lossBox = SL.$('compare-loss');
    SL.clear(accBox).appendChild(el('p', {class: 'muted'}, 'Loading…'));
    SL.clear(lossBox);
    const details = await Promise.all(names.map((n) =>
      SL.api('/api/runs/' + encodeURIComponent(n)).catch((err) => ({name: n, history: [], failed: err.message}))));
    const failed = details.filter((d) => d.failed);
    if (failed.length) SL.showError('runs-error', failed.map((d) => d.name + ': ' + d.failed).join('\n'));
    // A run without a validation split has no line here: its legend entry says why.
    const series = (key) => details.map((d) => {
      const points = (d.history || []).map((row) => [row.epoch, row[key]]);
      const none = SL.hasValidation(d) === false;
      return {name: d.name + (none ? ' (no validation split)' : ''), points};
    });
    SL.lineChart(accBox, {title: 'Validation accuracy', series: series('val_accuracy'), xLabel: 'epoch',
      xInteger: true, yFormat: (v, d) => SL.pct(v, d ?? 1), yBounds: [0, 1], empty: 'No validation accuracy recorded'});
    SL.lineChart(lossBox, {title: 'Validation loss', series: series('val_loss'), xLabel: 'epoch', xInteger: true,
      empty: 'No validation loss recorded'});
    panel.scrollIntoView({behavior: 'smooth', block: 'start'});
  }

  async function load() {
    try {
      const data = await SL.api('/api/runs');
      runs = data.runs || [];
      render();
      updateCompareButton();
    } catch (err) {
      SL.showError('runs-error', 'Cannot list the runs: ' + err.message);
    } finally {
      SL.$('runs-loading').hidden = true;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    table = SL.sortableTable(SL.$('runs-table'), COLUMNS, {rowAttrs: (r) => ({dataset: {run: r.name}})});
    SL.$('runs-filter').addEventListener('input', render);
    SL.$('compare-runs').addEventListener('click', compare);
    SL.$('compare-close').addEventListener('click', () => { SL.$('compare-panel').hidden = true; });
    load();
  });
})();
