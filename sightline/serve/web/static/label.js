/* The Label page (/datasets/label?folder=NAME): label the images waiting in a --data-dir
 * folder's unlabelled/, one at a time with keys or a page at a time in a grid, through
 * /api/datasets/folder/NAME/label. The next image shows at once from the batch the server
 * ranked; a new batch (the model refit on the labels so far) is asked for in the background
 * every few labels. Every label is one undoable change on the server. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const BATCH = 20; // images asked for at a time
  const GRID = 24; // suggestions a grid page shows
  const REFRESH_EVERY = 5; // labels between two batches (the model refits in between)
  const GRID_TICK = 0.9; // a grid's suggestion ticked from this calibrated probability on
  let status = null;
  let queue = []; // the images to label, the one shown first
  let unlike = [];
  let sinceBatch = 0;
  let fetching = null;
  let grid = false;
  let page = []; // the grid's suggestions: the surest first
  const sent = new Set(); // images labelled from this page (a batch made before may list them)

  const folder = () => SL.$('label-folder').value;
  const base = () => '/api/datasets/folder/' + encodeURIComponent(folder()) + '/label';
  const imageUrl = (path, large) => base() + '/image?path=' + encodeURIComponent(path) + (large ? '&large=true' : '');
  const say = (text) => { SL.$('label-status').textContent = text; };
  const classes = () => Object.keys((status && status.classes) || {});

  function fact(label, value, id) {
    return el('div', {class: 'metric', id}, el('span', {class: 'metric-label'}, label), el('span', {class: 'metric-value'}, value));
  }

  function renderStatus(s) {
    status = s;
    const facts = SL.$('label-facts');
    SL.clear(facts);
    const labelled = Object.values(s.classes).reduce((a, b) => a + b, 0);
    facts.appendChild(fact('Labelled', SL.int(labelled) + ' in ' + classes().length + ' classes', 'label-labelled'));
    facts.appendChild(fact('Waiting', SL.int(s.waiting), 'label-waiting'));
    const e = s.estimate;
    facts.appendChild(fact('Estimated accuracy', e ? SL.pct(e.accuracy) + ' (' + SL.pct(e.low, 0) + '–' + SL.pct(e.high, 0) + ')' : 'no model yet', 'label-accuracy'));
    facts.appendChild(fact('Sure at ' + SL.pct(s.confidence, 0), e ? SL.int(s.confident) : '–', 'label-confident'));
    for (const [name, count] of Object.entries(s.classes)) facts.appendChild(fact(name, SL.int(count)));
    const accept = SL.$('label-accept');
    accept.textContent = 'Label the rest (' + SL.int(s.confident) + ' at ≥ ' + SL.pct(s.confidence, 0) + ')';
    accept.disabled = Boolean(s.accept) || !s.confident;
    accept.title = s.accept || (s.confident ? 'Label every waiting image the model is this sure of (one Undo)' : 'No waiting image is suggested that surely');
    SL.$('label-undo').disabled = s.last_change === null;
    SL.$('label-train').href = '/train?folder=' + encodeURIComponent(folder());
    SL.$('label-health').href = '/datasets/health?folder=' + encodeURIComponent(folder());
    renderCurve(s);
    renderClasses();
  }

  function renderCurve(s) {
    const points = s.history || [];
    SL.$('label-progress').hidden = !points.length;
    if (!points.length) return;
    const e = s.estimate;
    SL.$('label-estimate').textContent = e
      ? 'Cross-validated on the ' + SL.int(e.labelled) + ' labels so far: ' + SL.pct(e.accuracy) + ', 95 % between ' + SL.pct(e.low) + ' and ' + SL.pct(e.high) + '.'
      : '';
    SL.lineChart(SL.$('label-curve'), {
      series: [
        {name: 'estimated accuracy', points: points.map((p) => [p.labelled, p.accuracy]), dots: true},
        {name: '95 % low', points: points.map((p) => [p.labelled, p.low]), dashed: true, thin: true},
        {name: '95 % high', points: points.map((p) => [p.labelled, p.high]), dashed: true, thin: true},
      ],
      xLabel: 'labels', xInteger: true, yFormat: (v, d) => SL.pct(v, d), yBounds: [0, 1],
    });
  }

  function renderClasses() {
    const row = SL.$('label-classes');
    SL.clear(row);
    classes().forEach((name, i) => {
      const key = i < 9 ? String(i + 1) : null;
      const b = el('button', {type: 'button', class: 'secondary', dataset: {cls: name}, title: key || ''}, name + (key ? ' (' + key + ')' : ''));
      b.addEventListener('click', () => labelShown(name));
      row.appendChild(b);
    });
  }

  function current() { return queue[0] || null; }

  function showCurrent() {
    const item = current();
    SL.$('label-one').hidden = grid || !item;
    SL.$('label-grid').hidden = !grid;
    if (grid) renderGrid();
    const empty = SL.$('label-empty');
    empty.hidden = grid || Boolean(item) || !status;
    empty.textContent = status && status.waiting ? 'Asking the model for the next images…'
      : 'Nothing waits for a label: train on this folder, then check its health.';
    if (!item) return;
    SL.$('label-image').src = imageUrl(item.path, true);
    SL.$('label-image').alt = item.path;
    SL.$('label-caption').textContent = item.path;
    const text = item.suggestion
      ? 'Suggested: ' + item.suggestion + ' (' + SL.pct(item.probability, 0) + ', calibrated). ' + item.why
      : item.why;
    SL.$('label-suggestion').textContent = text;
    for (const b of SL.$('label-classes').children) b.classList.toggle('primary', b.dataset.cls === item.suggestion);
  }

  async function loadGrid() {
    try {
      page = (await SL.api(base() + '/next?confident=true&n=' + GRID)).next;
    } catch (err) {
      SL.showError('label-error', err.message);
      page = [];
    }
    showCurrent();
  }

  function renderGrid() {
    const box = SL.$('label-grid-items');
    SL.clear(box);
    SL.$('label-grid-accept').disabled = !page.length;
    if (!page.length) box.appendChild(el('p', {class: 'muted'}, 'No suggestions yet: label a few images one at a time first.'));
    for (const item of page) {
      const select = el('select', {'aria-label': 'class of ' + item.path}, classes().map((c) => el('option', {value: c}, c)));
      if (item.suggestion) select.value = item.suggestion;
      const tick = el('input', {type: 'checkbox', 'aria-label': 'take ' + item.path});
      tick.checked = Boolean(item.suggestion) && item.probability >= GRID_TICK;
      box.appendChild(el('figure', {class: 'grid-item', dataset: {path: item.path}},
        el('img', {src: imageUrl(item.path, false), alt: item.path, class: 'thumb', loading: 'lazy'}),
        el('figcaption', null, el('label', {class: 'check'}, tick, ' '), select,
          item.suggestion ? el('span', {class: 'muted small'}, ' ' + SL.pct(item.probability, 0)) : null)));
    }
  }

  function renderUnlike() {
    const box = SL.$('label-unlike-items');
    SL.clear(box);
    SL.$('label-unlike').hidden = !unlike.length;
    for (const item of unlike) {
      const apart = el('button', {type: 'button', class: 'secondary small'}, 'Not any class');
      apart.addEventListener('click', () => send({[item.path]: null}));
      const show = el('button', {type: 'button', class: 'secondary small'}, 'Label it');
      show.addEventListener('click', () => { queue = [item, ...queue.filter((q) => q.path !== item.path)]; grid = false; showCurrent(); });
      box.appendChild(el('figure', {dataset: {path: item.path}}, el('img', {src: imageUrl(item.path, false), alt: item.path, class: 'thumb', loading: 'lazy'}),
        el('figcaption', {class: 'wrap'}, item.path), apart, show));
    }
  }

  async function fetchBatch() {
    if (fetching) return fetching;
    fetching = (async () => {
      try {
        const [s, next] = await Promise.all([SL.api(base()), SL.api(base() + '/next?n=' + BATCH)]);
        // The image on screen (now, not when the batch was asked for) stays until it is
        // labelled, never swapped under a key press, with the new answer for it where the
        // batch has one; images labelled while the batch was made are left out of it.
        const shown = current();
        const fresh = (item) => !sent.has(item.path);
        const again = shown && next.next.find((item) => item.path === shown.path);
        queue = next.next.filter((item) => fresh(item) && (!shown || item.path !== shown.path));
        if (shown && !grid) queue.unshift(again || shown);
        unlike = next.unlike.filter(fresh);
        sinceBatch = 0;
        renderStatus(s);
        renderUnlike();
        showCurrent();
      } catch (err) {
        SL.showError('label-error', err.message);
      } finally {
        fetching = null;
      }
    })();
    return fetching;
  }

  async function send(labels) {
    SL.$('label-error').hidden = true;
    const paths = Object.keys(labels);
    for (const p of paths) sent.add(p);
    queue = queue.filter((q) => !paths.includes(q.path));
    unlike = unlike.filter((q) => !paths.includes(q.path));
    showCurrent();
    renderUnlike();
    try {
      const answer = await SL.api(base(), {method: 'POST', json: {labels}});
      renderStatus(answer);
      const moved = answer.moved.length;
      say(paths.length === 1 && moved === 1 ? 'Moved ' + answer.moved[0].from + ' to ' + answer.moved[0].to + '. Undo (z) puts it back.'
        : 'Labelled ' + moved + ' image' + (moved === 1 ? '' : 's') + ' in one change. Undo (z) puts ' + (moved === 1 ? 'it' : 'them') + ' back.');
      sinceBatch += moved;
    } catch (err) {
      SL.showError('label-error', err.message); // e.g. labelled meanwhile in another tab
    }
    // in the background: every few labels, when few are left, and when the first model is made
    const firstModel = status && status.estimate && current() && !current().suggestion;
    if (sinceBatch >= REFRESH_EVERY || queue.length < 3 || firstModel) fetchBatch();
    showCurrent();
  }

  function labelShown(name) {
    const item = current();
    if (item) send({[item.path]: name});
  }

  async function undo() {
    try {
      const answer = await SL.api(base() + '/undo', {method: 'POST', json: {}});
      say('Undid change ' + answer.undone + ': ' + answer.restored.join(', ') + ' waiting again.');
      for (const p of answer.restored) sent.delete(p);
      queue = []; // the restored image comes back in the next batch
      await fetchBatch();
      if (grid) await loadGrid();
    } catch (err) {
      SL.showError('label-error', err.message);
    }
  }

  async function acceptRest() {
    try {
      const answer = await SL.api(base() + '/accept', {method: 'POST', json: {above: status.confidence}});
      say('Labelled ' + answer.moved.length + ' confident images in one change. Undo (z) puts them back.');
      queue = [];
      await fetchBatch();
    } catch (err) {
      SL.showError('label-error', err.message);
    }
  }

  function gridAccept() {
    const labels = {};
    for (const fig of SL.$('label-grid-items').querySelectorAll('figure')) {
      if (fig.querySelector('input').checked && fig.querySelector('select').value) labels[fig.dataset.path] = fig.querySelector('select').value;
    }
    if (Object.keys(labels).length) send(labels).then(loadGrid);
    else say('Nothing ticked.');
  }

  function newClass(event) {
    event.preventDefault();
    const name = SL.$('label-new').value.trim();
    if (!name) return;
    SL.$('label-new').value = '';
    SL.$('label-new').blur();
    labelShown(name);
  }

  function onKey(event) {
    if (event.target.closest('input, select, textarea') || event.ctrlKey || event.metaKey || event.altKey) return;
    const k = event.key;
    if (k === 'z') undo();
    else if (k === 'g') toggleGrid();
    else if (grid) return;
    else if (k === 'a' && current() && current().suggestion) labelShown(current().suggestion);
    else if (/^[1-9]$/.test(k) && classes()[Number(k) - 1]) labelShown(classes()[Number(k) - 1]);
    else if (k === 'x' && current()) send({[current().path]: null});
    else if (k === 's' && queue.length > 1) { queue.push(queue.shift()); showCurrent(); }
    else if (k === 'n') { SL.$('label-new').focus(); }
    else return;
    event.preventDefault();
  }

  function toggleGrid() {
    grid = !grid;
    SL.$('label-mode').textContent = grid ? 'One at a time (g)' : 'Grid (g)';
    if (grid) loadGrid();
    else showCurrent();
  }

  async function start() {
    SL.$('label-undo').addEventListener('click', undo);
    SL.$('label-accept').addEventListener('click', acceptRest);
    SL.$('label-mode').addEventListener('click', toggleGrid);
    SL.$('label-apart').addEventListener('click', () => current() && send({[current().path]: null}));
    SL.$('label-skip').addEventListener('click', () => { if (queue.length > 1) { queue.push(queue.shift()); showCurrent(); } });
    SL.$('label-grid-accept').addEventListener('click', gridAccept);
    SL.$('label-new-form').addEventListener('submit', newClass);
    SL.$('label-folder').addEventListener('change', () => { queue = []; fetchBatch(); });
    document.addEventListener('keydown', onKey);
    try {
      const data = await SL.api('/api/datasets');
      const names = (data.folders || []).filter((f) => f.waiting || !f.error).map((f) => f.name);
      const select = SL.$('label-folder');
      for (const n of names) select.appendChild(el('option', {value: n}, n));
      if (!names.length) {
        say('No folder: start the server with `sightline serve --data-dir FOLDER` (its unlabelled/ holds the images to label).');
        return;
      }
      if (names.includes(SL.param('folder'))) select.value = SL.param('folder');
      say('Reading the folder (the first time, each image once through the pretrained network)…');
      await fetchBatch();
    } catch (err) {
      SL.showError('label-error', 'Cannot list the folders: ' + err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
