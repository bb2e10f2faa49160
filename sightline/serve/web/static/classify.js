/* The Classify page (/classify?run=NAME&test=INDEX): one image (file picker, drag and drop,
 * paste, or a random test image) through POST /api/inspect: what the model saw, its top
 * classes, a saliency map and the layers' activations. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const TOP_K = 5;
  let testCount = null;
  let runCalibrated = null; // the run's, from /api/runs/{run} (null: not said)
  let busy = null; // the AbortController of the request under way: a new image cancels it

  function currentRun() {
    return SL.$('run-select').value || null;
  }

  function setStatus(text) {
    SL.$('classify-status').textContent = text || '';
  }

  async function onRunChange() {
    const run = currentRun();
    SL.$('run-link').href = run ? SL.runUrl(run) : '/';
    const url = new URL(window.location.href);
    if (run) url.searchParams.set('run', run);
    window.history.replaceState(null, '', url.pathname + url.search);
    testCount = null;
    runCalibrated = null;
    SL.$('random-test').disabled = true;
    SL.setText('random-test-why', run ? '' : 'No run yet: train one to classify its test images.');
    if (!run) return;
    try {
      const d = await SL.api('/api/runs/' + encodeURIComponent(run));
      if (currentRun() !== run) return;
      testCount = SL.isNum(d.test_count) ? d.test_count : null;
      runCalibrated = typeof d.calibrated === 'boolean' ? d.calibrated : null;
      const button = SL.$('random-test');
      button.disabled = !testCount;
      button.title = testCount ? `one of the ${SL.int(testCount)} test images` : '';
      // A disabled button shows no tooltip: the reason is written beside it.
      SL.setText('random-test-why', testCount ? '' : 'This run has no test evaluation to draw from (sightline evaluate RUN).');
    } catch (err) {
      SL.showError('classify-error', err.message);
    }
  }

  async function inspect(fields) {
    const run = currentRun();
    if (!run) { SL.showError('classify-error', 'No run can classify yet: train one first.'); return; }
    if (busy) busy.abort();
    busy = new AbortController();
    const form = new FormData();
    form.append('run', run);
    form.append('k', String(TOP_K));
    for (const [k, v] of Object.entries(fields)) {
      if (v instanceof File) form.append(k, v, v.name || 'pasted.png'); else form.append(k, String(v));
    }
    SL.showError('classify-error', null);
    setStatus('Classifying…');
    try {
      const result = await SL.api('/api/inspect', {method: 'POST', form, signal: busy.signal});
      show(result);
      setStatus('');
    } catch (err) {
      if (err.name === 'AbortError') return;
      setStatus('');
      SL.showError('classify-error', (err.status === 413 ? 'Too large: ' : '') + err.message);
    }
  }

  function setImage(id, src) {
    const img = SL.$(id);
    img.closest('figure').hidden = !src;
    if (src) img.src = src; else img.removeAttribute('src');
  }

  function show(r) {
    SL.$('inspect-result').hidden = false;
    setImage('original-image', r.original);
    setImage('seen-image', r.seen);
    setImage('saliency-image', r.saliency);
    SL.setText('saliency-caption', r.saliency_method ? 'Saliency (' + r.saliency_method + ')' : 'Saliency');
    SL.setText('result-file', r.file ? r.file + ' · run ' + r.run : 'run ' + r.run);
    // "None of these": the image is unlike every class the run was trained on (its score over
    // the run's threshold). That is the answer; the closest class is said as the closest, in
    // neutral grey, never in the green of an answer.
    SL.$('result-label').classList.toggle('unknown', !!r.unknown);
    SL.setText('result-label', r.unknown ? 'None of these' : r.label);
    SL.setText('result-confidence', r.unknown ? 'closest class: ' + r.closest + ' (' + SL.pct(r.confidence) + ')' : SL.pct(r.confidence));
    const why = SL.$('result-unknown');
    why.hidden = !r.unknown;
    why.textContent = r.unknown ? 'Unlike the images this run was trained on: its score ' + SL.num(r.ood_score, 1) +
      ' is over the run\'s threshold ' + SL.num(r.unknown_threshold, 1) + ' (which 95 % of its validation images stay under).' : '';
    const truth = SL.$('result-truth');
    SL.clear(truth);
    truth.hidden = r.true_label === null || r.true_label === undefined;
    if (!truth.hidden) {
      const right = !r.unknown && r.true_label === r.label;
      truth.append(el('span', {class: right ? 'right' : 'wrong'}, right ? '✓ right' : '✗ wrong'), ' · true label: ', el('strong', null, r.true_label));
    }
    const note = SL.$('result-note');
    note.hidden = !r.note;
    note.textContent = r.note || '';
    renderTopK(r.top_k || [], !!r.unknown);
    SL.setText('top-k-caption', caption(r));
    renderActivations(r.activations || []);
  }

  // What the bars are: how the run shares 100 % among its own classes (whatever the image),
  // and whether those probabilities are calibrated, when the run says.
  function caption(r) {
    const calibrated = typeof r.calibrated === 'boolean' ? r.calibrated : runCalibrated;
    const parts = [r.unknown
      ? 'The run\'s classes share 100 % among themselves whatever the image: these bars say which class is closest, not that the image is one of them.'
      : 'Probabilities among the run\'s classes.'];
    if (calibrated === true) parts.push('They are calibrated: of the answers given 90 %, about 90 % are right.');
    if (calibrated === false) parts.push('They are not calibrated (sightline calibrate RUN): they may be over-confident.');
    return parts.join(' ');
  }

  // The answer's bar is green; an unknown answer has none: its closest class is marked as the
  // closest and every bar is neutral.
  function renderTopK(top, unknown) {
    const box = SL.clear(SL.$('top-k'));
    box.classList.toggle('neutral', unknown);
    top.forEach((t, i) => {
      const first = i === 0 ? (unknown ? ' closest' : ' top') : '';
      box.appendChild(el('div', {class: 'bar-row' + first},
        el('span', {class: 'bar-label'}, t.label, unknown && i === 0 ? el('span', {class: 'tag'}, 'closest') : null),
        SL.bar(t.probability), el('span', {class: 'bar-value'}, SL.pct(t.probability))));
    });
  }

  function renderActivations(layers) {
    const box = SL.clear(SL.$('activations'));
    if (!layers.length) { box.appendChild(el('p', {class: 'muted'}, 'No layer activations.')); return; }
    for (const a of layers) {
      const shape = Array.isArray(a.shape) ? '(' + a.shape.join(' × ') + ')' : '';
      const stats = `mean ${SL.short(a.mean)} · std ${SL.short(a.std)} · min ${SL.short(a.min)} · max ${SL.short(a.max)}` +
        (SL.isNum(a.zeros) ? ` · zeros ${SL.pct(a.zeros, 0)}` : '');
      box.appendChild(el('div', {class: 'activation'},
        el('div', {class: 'layer-name'}, a.name), el('div', {class: 'stats'}, shape),
        a.image ? el('img', {src: a.image, alt: 'activations of ' + a.name}) : null,
        el('div', {class: 'stats'}, stats)));
    }
  }

  function firstImage(files) {
    for (const f of files || []) if (!f.type || f.type.startsWith('image/')) return f;
    return null;
  }

  function setupInputs() {
    const zone = SL.$('drop-zone');
    SL.$('file-input').addEventListener('change', (e) => {
      const file = e.target.files && e.target.files[0];
      if (file) inspect({file});
      e.target.value = ''; // the same file chosen again is a new change
    });
    SL.dropZone(zone, (files) => {
      const file = firstImage(files.map((p) => p.file));
      if (file) inspect({file});
      else SL.showError('classify-error', 'Drop an image file.');
    });
    document.addEventListener('paste', (e) => {
      const items = (e.clipboardData && e.clipboardData.items) || [];
      for (const item of items) {
        if (item.kind === 'file' && item.type.startsWith('image/')) {
          e.preventDefault();
          const blob = item.getAsFile();
          const ext = (item.type.split('/')[1] || 'png').replace(/[^a-z0-9]/gi, '');
          inspect({file: new File([blob], 'pasted.' + ext, {type: item.type})});
          return;
        }
      }
    });
    SL.$('random-test').addEventListener('click', () => {
      if (testCount) inspect({test_index: Math.floor(Math.random() * testCount)});
    });
    SL.$('run-select').addEventListener('change', onRunChange);
  }

  async function start() {
    setupInputs();
    try {
      const runs = await SL.fillRunSelect(SL.$('run-select'), SL.param('run'));
      if (!runs.length) {
        SL.showError('classify-error', 'No trained run yet: train one (sightline train fashion-mnist, or the Train page) to classify images.');
        return;
      }
      if (SL.param('run') && currentRun() !== SL.param('run')) {
        SL.showError('classify-error', 'Run "' + SL.param('run') + '" cannot classify (no model, or no such run); using ' + currentRun() + '.');
      }
    } catch (err) {
      SL.showError('classify-error', 'Cannot list the runs: ' + err.message);
      return;
    }
    await onRunChange();
    const test = SL.param('test');
    if (test !== null && /^\d+$/.test(test)) inspect({test_index: Number(test)});
  }

  document.addEventListener('DOMContentLoaded', start);
})();
