/* The Datasets page (/datasets): a card per built-in dataset and per --data-dir folder; opening
 * one loads its counts per class and split and a row of sample images per class. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;

  function classNames(classes) {
    return (classes || []).map((c) => (typeof c === 'string' ? c : c.name));
  }

  function fact(label, value) {
    return el('div', {class: 'metric'}, el('span', {class: 'metric-label'}, label), el('span', {class: 'metric-value'}, value));
  }

  function builtinCard(d) {
    const available = d.cached || d.mirrored;
    const shape = Array.isArray(d.shape) ? d.shape.join('×') : '–';
    return card('builtin', d.name, [
      el('p', null, d.description || ''),
      el('div', {class: 'metrics'}, fact('Classes', String((d.classes || []).length)), fact('Train', SL.int(d.train)),
        fact('Test', SL.int(d.test)), fact('Shape', shape)),
      el('p', {class: 'muted'}, classNames(d.classes).join(', ')),
      available
        ? el('p', null, SL.badge('finished', null), ' ', d.cached ? 'downloaded' : 'available from the mirror')
        : el('p', null, el('span', {class: 'badge warn'}, 'not downloaded'), ' ', el('code', null, 'sightline datasets --download ' + d.name)),
    ]);
  }

  function buildLink(f) {
    return f.buildable ? el('a', {class: 'button secondary small', href: '/datasets/build?folder=' + encodeURIComponent(f.name)},
      'Add images and classes') : null;
  }

  function labelLink(f) {
    return f.waiting ? el('a', {class: 'button small', href: '/datasets/label?folder=' + encodeURIComponent(f.name)},
      'Label its ' + SL.int(f.waiting) + ' waiting images') : null;
  }

  function folderCard(f) {
    if (f.error && f.waiting) {
      return card('folder', f.name, [el('p', {class: 'muted'}, SL.int(f.waiting) + ' images wait for a label in unlabelled/; no class yet.'),
        el('p', {class: 'button-row'}, labelLink(f), buildLink(f))], false);
    }
    if (f.error) return card('folder', f.name, [el('p', {class: f.buildable ? 'muted' : 'error-text'}, f.error), buildLink(f)], false);
    const splits = f.splits || {};
    const count = (split) => Object.values(splits[split] || {}).reduce((a, b) => a + b, 0);
    return card('folder', f.name, [
      el('p', {class: 'muted'}, 'An image folder: one sub-folder per class.'),
      el('div', {class: 'metrics'}, fact('Classes', String((f.classes || []).length)), fact('Train', SL.int(count('train'))),
        fact('Test', splits.test ? SL.int(count('test')) : 'none'), fact('Images', SL.int(f.images)),
        f.waiting ? fact('Waiting for a label', SL.int(f.waiting)) : null),
      el('p', {class: 'muted'}, classNames(f.classes).join(', ')),
      el('p', {class: 'button-row'}, el('a', {class: 'button secondary small', href: '/datasets/health?folder=' + encodeURIComponent(f.name)},
        'Check its health: copies, leaks, wrong labels'), labelLink(f), buildLink(f)),
    ]);
  }

  function card(kind, name, content, expandable) {
    const details = el('details', {class: 'dataset-details'}, el('summary', null, 'Classes, counts and samples'),
      el('div', {class: 'dataset-body'}));
    const node = el('section', {class: 'card dataset', dataset: {kind, name}}, el('h2', null, name), content,
      expandable === false ? null : details);
    details.addEventListener('toggle', () => {
      node.classList.toggle('open', details.open);
      if (details.open && !details.dataset.loaded) {
        details.dataset.loaded = '1';
        loadDetail(kind, name, details.querySelector('.dataset-body'));
      }
    });
    return node;
  }

  async function loadDetail(kind, name, box) {
    box.appendChild(el('p', {class: 'muted'}, 'Loading…'));
    const base = '/api/datasets/' + encodeURIComponent(kind) + '/' + encodeURIComponent(name);
    let d;
    try {
      d = await SL.api(base);
    } catch (err) {
      SL.clear(box).appendChild(el('p', {class: 'error-text'}, err.message));
      return;
    }
    SL.clear(box);
    if (d.message) box.appendChild(el('p', {class: 'note'}, d.message));
    const classes = d.classes || [];
    const splits = Object.keys(d.splits || {});
    if (classes.length && splits.length) {
      const head = el('tr', null, el('th', null, 'Class'), splits.map((s) => el('th', {class: 'num'}, s)));
      const rows = classes.map((c) => el('tr', null, el('td', {class: 'wrap'}, c),
        splits.map((s) => el('td', {class: 'num'}, SL.int((d.splits[s] || {})[c] ?? 0)))));
      box.appendChild(el('div', {class: 'table-wrap'},
        el('table', {class: 'table counts-table'}, el('thead', null, head), el('tbody', null, rows))));
    }
    if (d.available === false) return; // no samples to show from data that is not here
    box.appendChild(el('h3', null, 'Samples (train split)'));
    box.appendChild(el('div', {class: 'sample-rows'}, classes.map((c, i) => el('div', {class: 'sample-row'},
      el('span', {class: 'wrap'}, c),
      el('img', {src: base + '/samples/' + i + '.png', alt: 'samples of ' + c, loading: 'lazy'})))));
  }

  async function start() {
    try {
      const data = await SL.api('/api/datasets');
      const builtin = SL.clear(SL.$('builtin-datasets'));
      (data.builtin || []).forEach((d) => builtin.appendChild(builtinCard(d)));
      const folders = SL.clear(SL.$('folder-datasets'));
      (data.folders || []).forEach((f) => folders.appendChild(folderCard(f)));
      if ((data.collections || []).length) {
        folders.appendChild(el('p', null, el('a', {class: 'button', href: '/datasets/build'}, 'Build a new dataset')));
      }
      if (!(data.folders || []).length) {
        folders.appendChild(el('p', {class: 'muted'}, 'None: start the server with ',
          el('code', null, 'sightline serve --data-dir FOLDER'), ' to train on your own images.'));
      }
    } catch (err) {
      SL.clear(SL.$('builtin-datasets'));
      SL.showError('datasets-error', 'Cannot list the datasets: ' + err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
