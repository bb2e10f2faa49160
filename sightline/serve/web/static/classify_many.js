/* The Classify many page (/classify-many): files, folders or .zip archives (dropped on the
 * drop zone or chosen) through POST /api/predict; a sortable table of results, the files that
 * could not be read (kept, with their reasons, until cleared or started over), and a CSV of it
 * all built in the browser. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const TOP_K = 3;
  let picked = [];
  let results = [];
  let bad = []; // every file refused since the list was last cleared: [{file, error}]
  let resultsTable = null;
  let badTable = null;

  function topK(r) {
    return (r.top_k || []).map((t) => t.label + ' ' + SL.pct(t.probability, 0)).join(', ');
  }

  // An image unlike the run's training images (its ood_score over the threshold) is answered
  // "None of these", the closest class still said, as on the Classify page.
  function answer(r) {
    return r.unknown ? 'None of these (closest: ' + r.closest + ')' : r.label;
  }

  const RESULT_COLUMNS = [
    {key: 'thumbnail', label: '', sortable: false, class: 'thumb-cell',
      cell: (r) => (r.thumbnail ? el('img', {class: 'thumb', src: r.thumbnail, alt: ''}) : '')},
    {key: 'file', label: 'File', class: 'name'},
    {key: 'label', label: 'Answer', class: 'wrap key', value: answer,
      cell: (r) => (r.unknown ? el('span', {class: 'unknown', title: 'score ' + SL.num(r.ood_score, 1) +
        ' over the run\'s threshold ' + SL.num(r.unknown_threshold, 1)}, answer(r)) : r.label)},
    // An unknown answer's confidence is its closest class's, drawn neutral: not an answer's.
    {key: 'confidence', label: 'Confidence', class: 'key', cell: (r) => el('div', {class: 'conf-cell' + (r.unknown ? ' closest' : ''),
      title: r.unknown ? 'the closest class (' + r.closest + ')\'s probability among the run\'s classes: not an answer' : null},
      SL.bar(r.confidence), (r.unknown ? 'closest ' : '') + SL.pct(r.confidence))},
    {key: 'top_k', label: 'Top-3', class: 'wrap', value: topK, cell: topK},
  ];
  const BAD_COLUMNS = [
    {key: 'file', label: 'File', class: 'name'},
    {key: 'error', label: 'Reason', class: 'wrap'},
  ];

  // A folder's hidden files ("cats/.DS_Store") are no images anyone chose.
  const hidden = (name) => name.includes('/') && /(^|\/)\./.test(name);

  // files: [{file, name}]; a folder's files keep their path inside it ("cats/a.png"), so
  // results tell them apart.
  function choose(files) {
    picked = files.filter((p) => !hidden(p.name));
    const bytes = picked.reduce((sum, p) => sum + p.file.size, 0);
    SL.$('many-picked').textContent = picked.length
      ? `${picked.length} file${picked.length === 1 ? '' : 's'} chosen (${(bytes / 1048576).toFixed(1)} MB)`
      : 'No files chosen.';
    SL.$('classify-many-submit').disabled = !picked.length || !SL.$('run-select').value;
  }

  // all: this submission's answers so far; before: the files refused before it, which stay
  // listed (a reason must not vanish with the next upload) until cleared.
  function showResults(all, before) {
    results = all.filter((r) => !r.error);
    const refused = all.filter((r) => r.error);
    const seen = new Set();
    bad = [...before, ...refused].filter((r) => {
      const key = r.file + '\u0000' + r.error;
      return !seen.has(key) && seen.add(key);
    });
    const unknown = results.filter((r) => r.unknown).length;
    const summary = SL.$('many-summary');
    summary.hidden = false;
    summary.textContent = `${results.length} classified` + (unknown ? ` (${unknown} none of these)` : '') +
      `, ${refused.length} bad` + (refused.length ? ' (listed below)' : '') + '.';
    SL.$('many-results').hidden = !results.length;
    showBad();
    resultsTable.setRows(results);
    SL.$('download-csv').disabled = !results.length && !bad.length;
  }

  function showBad() {
    SL.$('many-bad').hidden = !bad.length;
    SL.setText('bad-count', bad.length ? `${bad.length} file${bad.length === 1 ? '' : 's'}` : '');
    badTable.setRows(bad);
  }

  function clearBad() {
    bad = [];
    showBad();
    SL.$('download-csv').disabled = !results.length;
  }

  function startOver() {
    results = [];
    resultsTable.setRows(results);
    SL.$('many-results').hidden = true;
    SL.$('many-summary').hidden = true;
    SL.showError('many-error', null);
    SL.$('files-input').value = '';
    SL.$('folder-input').value = '';
    choose([]);
    clearBad();
  }

  function setupDropZone() {
    const zone = SL.$('many-drop');
    SL.$('files-input').addEventListener('change', (e) => {
      SL.$('folder-input').value = '';
      choose([...e.target.files].map((f) => ({file: f, name: f.name})));
    });
    SL.$('folder-input').addEventListener('change', (e) => {
      SL.$('files-input').value = '';
      choose([...e.target.files].map((f) => ({file: f, name: f.webkitRelativePath || f.name})));
    });
    SL.$('choose-folder').addEventListener('click', () => SL.$('folder-input').click());
    SL.dropZone(zone, (files) => {
      SL.$('files-input').value = '';
      SL.$('folder-input').value = '';
      choose(files);
    }, {folders: true, onError: (err) => SL.showError('many-error', 'Cannot read what was dropped: ' + (err.message || err))});
  }

  async function send(batch) {
    const form = new FormData();
    for (const p of batch) form.append('files', p.file, p.name);
    form.append('run', SL.$('run-select').value);
    form.append('k', String(TOP_K));
    form.append('thumbnails', 'true');
    try {
      const body = await SL.api('/api/predict', {method: 'POST', form});
      // Each row keeps the threshold its answer was given under, for its tooltip.
      return (body.results || []).map((r) => ({...r, unknown_threshold: body.unknown_threshold}));
    } catch (err) {
      if (err.body && Array.isArray(err.body.results)) return err.body.results; // 415: each file's reason
      throw err;
    }
  }

  async function submit(e) {
    e.preventDefault();
    if (!picked.length) return;
    const button = SL.$('classify-many-submit');
    button.disabled = true;
    SL.showError('many-error', null);
    const before = bad;
    let all = [];
    try {
      const limits = (await SL.api('/api/health')).limits || {};
      const plan = SL.uploadBatches(picked, limits);
      all = plan.tooLarge;
      let done = 0;
      for (const batch of plan.batches) {
        button.textContent = `Classifying… ${done}/${picked.length}`;
        all = all.concat(await send(batch));
        done += batch.length;
        showResults(all, before);
      }
      showResults(all, before);
    } catch (err) {
      SL.showError('many-error', err.message + (all.length ? ' (the files before it are listed)' : ''));
      if (all.length) showResults(all, before);
    } finally {
      button.disabled = false;
      button.textContent = 'Classify';
    }
  }

  // One CSV field: always quoted (names hold commas, quotes, newlines), quotes doubled, and a
  // text's leading = + - @ defused so a spreadsheet shows a file name instead of running it. A
  // number is written as it is: a negative score is no formula.
  function csvField(value) {
    let s = value === null || value === undefined ? '' : String(value);
    if (typeof value !== 'number' && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return '"' + s.replace(/"/g, '""') + '"';
  }

  function toCsv() {
    // As the CLI's CSV: label says unknown, closest and ood_score follow.
    const header = ['file', 'label', 'confidence', 'closest', 'ood_score'];
    for (let i = 1; i <= TOP_K; i++) header.push('top' + i, 'p' + i);
    header.push('error');
    const lines = [header.map(csvField).join(',')];
    for (const r of [...results, ...bad]) {
      const row = [r.file, r.error ? '' : r.label, r.error ? '' : r.confidence,
        r.closest || '', r.ood_score === undefined ? '' : r.ood_score];
      for (let i = 0; i < TOP_K; i++) {
        const t = (r.top_k || [])[i];
        row.push(t ? t.label : '', t ? t.probability : '');
      }
      row.push(r.error || '');
      lines.push(row.map(csvField).join(','));
    }
    return lines.join('\r\n') + '\r\n';
  }

  function downloadCsv() {
    const blob = new Blob([toCsv()], {type: 'text/csv;charset=utf-8'});
    const url = URL.createObjectURL(blob);
    const link = el('a', {href: url, download: 'predictions-' + (SL.$('run-select').value || 'run') + '.csv', hidden: true});
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  SL.csvField = csvField; // for the browser tests

  async function start() {
    resultsTable = SL.sortableTable(SL.$('many-table'), RESULT_COLUMNS);
    badTable = SL.sortableTable(SL.$('bad-table'), BAD_COLUMNS);
    setupDropZone();
    SL.$('many-form').addEventListener('submit', submit);
    SL.$('download-csv').addEventListener('click', downloadCsv);
    SL.$('many-reset').addEventListener('click', startOver);
    SL.$('bad-clear').addEventListener('click', clearBad);
    try {
      const runs = await SL.fillRunSelect(SL.$('run-select'), SL.param('run'));
      if (!runs.length) SL.showError('many-error', 'No trained run yet: train one first (the Train page).');
    } catch (err) {
      SL.showError('many-error', 'Cannot list the runs: ' + err.message);
    }
    choose([]);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
