/* The Run page (/runs/{id}): headline metrics, curves, model summary, configuration, links;
 * the evaluation sections are run_eval.js. A run that is training is reloaded every few
 * seconds until it ends (and a little longer, for its evaluation and plots to appear). */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const REFRESH_MS = 4000;
  const AFTER_END_POLLS = 15; // about a minute: evaluation and report follow the training
  let runId = null;
  let base = null;
  let evalKey = null;
  let configShown = false;
  let summaryLoaded = false;
  let sawRunning = false;
  let pollsLeft = AFTER_END_POLLS;

  function renderHead(d) {
    const status = SL.$('run-status');
    SL.clear(status).appendChild(SL.badge(d.status, d.error || null));
    SL.setText('run-created', d.created ? 'created ' + SL.date(d.created) : '');
    const study = SL.$('run-study'); // a sweep's trial: its study's page
    study.hidden = !(d.study && d.study.name);
    if (d.study && d.study.name) {
      study.href = '/studies/' + encodeURIComponent(d.study.name);
      study.textContent = 'trial ' + d.study.trial + ' of sweep ' + d.study.name;
    }
    if (d.status === 'failed' || d.status === 'broken') {
      SL.showError('run-error', (d.status === 'failed' ? 'Training failed: ' : 'This run is damaged: ') + SL.webText(d.error || 'no reason recorded'));
    } else {
      SL.showError('run-error', null);
    }
    SL.setText('metric-test-accuracy', SL.isNum(d.test_accuracy) ? SL.pct(d.test_accuracy, 2) : 'not evaluated');
    SL.setText('metric-test-loss', SL.num(d.test_loss));
    SL.setText('metric-test-ece', SL.isNum(d.test_ece) ? SL.pct(d.test_ece, 2) : '–');
    const ece = SL.$('metric-test-ece');
    if (ece) ece.title = 'expected calibration error on the test split: how far its probabilities are from how often it is right (0 is perfect; the Reliability plot shows it)' +
      (SL.isNum(d.test_ece_floor) ? '. Perfectly calibrated probabilities would still show ' + SL.pct(d.test_ece_floor, 2) + ' on these images, from sampling alone' : '');
    const bestText = SL.bestText(d, 2); // the metric named: "val. accuracy 91.30%", "train loss 0.2100"
    SL.setText('metric-best', d.best_epoch ? d.best_epoch + (bestText ? ' (' + bestText + (SL.hasValidation(d) === false ? ', no validation split' : '') + ')' : '') : '–');
    const best = SL.$('metric-best');
    if (best) best.title = d.monitor ? 'the epoch of the best ' + SL.metricName(d.monitor) : '';
    SL.setText('metric-epochs', (d.epochs_done ?? 0) + ' / ' + (d.epochs ?? '?'));
    SL.setText('metric-model', d.model);
    SL.setText('metric-dataset', SL.dataName(d.dataset));
    SL.$('metric-dataset').title = d.dataset || '';
    const classes = Array.isArray(d.classes) ? d.classes : null;
    SL.setText('run-classes', classes ? classes.length + ' classes: ' + classes.join(', ') : '');
  }

  function renderActions(d) {
    const box = SL.clear(SL.$('run-actions'));
    box.appendChild(el('a', {class: 'button', id: 'classify-link', href: '/classify?run=' + encodeURIComponent(runId)}, 'Classify with this run'));
    if (d.has_report) {
      box.appendChild(el('a', {class: 'button secondary', id: 'report-link', href: base + '/report', target: '_blank', rel: 'noopener'}, 'HTML report'));
    }
    for (const which of d.model_files || []) {
      box.appendChild(el('a', {class: 'button secondary', href: base + '/model?which=' + encodeURIComponent(which),
        download: runId + '-' + which + '.safetensors'}, 'Download ' + which + ' model'));
    }
    for (const which of d.onnx_files || []) {
      box.appendChild(el('a', {class: 'button secondary', href: base + '/onnx?which=' + encodeURIComponent(which),
        download: runId + '-' + which + '.onnx'}, 'Download ' + which + ' ONNX'));
    }
    if ((d.model_files || []).length && !(d.onnx_files || []).length) {
      box.appendChild(el('span', {class: 'muted', id: 'onnx-hint'}, 'ONNX: ', el('code', null, 'sightline export ' + runId)));
    }
    if ((d.refused_links || []).length) { // files of the run that are symbolic links: never read or served
      box.appendChild(el('span', {class: 'muted', id: 'refused-links'}, 'Refused (symbolic links are never followed): ' + d.refused_links.join(', ')));
    }
  }

  function renderCurves(d) {
    const rows = d.history || [];
    const series = (key) => rows.map((r) => [r.epoch, r[key]]);
    const note = d.history_error ? d.history_error : 'No epoch finished yet';
    // A run without a validation split has no validation line: its legend says so. Before its
    // first epoch that is known from its data options only (val_split 0: none); else "train".
    const data = (d.config && d.config.data) || {};
    let validates = rows.length ? rows.some((r) => SL.isNum(r.val_loss) || SL.isNum(r.val_accuracy)) : SL.hasValidation(d);
    if (validates === null && 'val_split' in data && !data.val_split) validates = false;
    const curves = (key) => (validates
      ? [{name: 'train', points: series(key)}, {name: 'validation', points: series('val_' + key)}]
      : [{name: validates === false ? 'train (no validation split)' : 'train', points: series(key)}]);
    SL.lineChart(SL.$('chart-loss'), {title: 'Loss', xLabel: 'epoch', xInteger: true, empty: note,
      series: curves('loss')});
    SL.lineChart(SL.$('chart-accuracy'), {title: 'Accuracy', xLabel: 'epoch', xInteger: true, empty: note,
      yFormat: (v, d) => SL.pct(v, d ?? 1), yBounds: [0, 1], series: curves('accuracy')});
  }

  async function loadSummary() {
    const box = SL.$('model-summary');
    summaryLoaded = true; // asked once: a model's layers do not change while it trains
    try {
      const s = await SL.api(base + '/summary');
      SL.setText('metric-parameters', SL.int(s.total));
      const table = el('table', {class: 'table', id: 'summary-table'});
      table.appendChild(el('thead', null, el('tr', null, el('th', null, 'Layer'), el('th', null, 'Type'),
        el('th', null, 'Output shape'), el('th', {class: 'num'}, 'Parameters'), el('th', null, 'Trainable'))));
      const body = el('tbody');
      for (const layer of s.layers || []) {
        const shape = '(' + (layer.output_shape || []).map((x) => (x === null ? 'N' : x)).join(', ') + ')';
        body.appendChild(el('tr', null, el('td', {class: 'wrap'}, layer.name), el('td', null, layer.type), el('td', {class: 'nowrap'}, shape),
          el('td', {class: 'num'}, SL.int(layer.params)), el('td', null, layer.trainable === false ? 'no' : 'yes')));
      }
      table.appendChild(body);
      table.appendChild(el('tfoot', null,
        el('tr', null, el('td', {colspan: 3}, 'Total'), el('td', {class: 'num'}, SL.int(s.total)), el('td')),
        el('tr', null, el('td', {colspan: 3}, 'Trainable'), el('td', {class: 'num'}, SL.int(s.trainable)), el('td')),
        el('tr', null, el('td', {colspan: 3}, 'Non-trainable'), el('td', {class: 'num'}, SL.int(s.non_trainable)), el('td'))));
      const input = s.input_shape ? 'Input ' + '(' + s.input_shape.join(', ') + ')' + ' · ' : '';
      SL.clear(box).append(el('p', {class: 'muted'}, input + (s.name || '')), el('div', {class: 'table-wrap'}, table));
    } catch (err) {
      SL.clear(box).appendChild(el('p', {class: 'muted'}, 'No model summary: ' + err.message));
    }
  }

  function schedule(d) {
    if (d && d.status === 'running') {
      sawRunning = true;
      pollsLeft = AFTER_END_POLLS;
    } else if (!sawRunning || pollsLeft-- <= 0 || (d && d.has_report)) {
      return; // a run that was not training here, or whose results are all in
    }
    window.setTimeout(load, REFRESH_MS);
  }

  async function load() {
    let d;
    try {
      d = await SL.api(base);
    } catch (err) {
      SL.showError('run-error', 'Cannot load this run: ' + err.message);
      if (err.status !== 404) schedule(null);
      return;
    }
    renderHead(d);
    renderActions(d);
    renderCurves(d);
    // The evaluation sections are redrawn only when what they show changed, so a cell the
    // user clicked in the confusion matrix stays open through the refreshes.
    const key = JSON.stringify([d.status, !!d.evaluation, d.plots || null, d.has_report || false]);
    if (key !== evalKey) {
      evalKey = key;
      SL.runEval.render(d, base, runId);
    }
    if (!configShown && d.config) {
      SL.$('run-config').textContent = JSON.stringify(d.config, null, 2);
      configShown = true;
    }
    if (!summaryLoaded && (d.epochs_done || 0) > 0) loadSummary();
    else if (!summaryLoaded) SL.clear(SL.$('model-summary')).appendChild(el('p', {class: 'muted'}, 'No model saved yet.'));
    schedule(d);
  }

  document.addEventListener('DOMContentLoaded', () => {
    runId = SL.$('main').dataset.run;
    base = '/api/runs/' + encodeURIComponent(runId);
    load();
  });
})();
