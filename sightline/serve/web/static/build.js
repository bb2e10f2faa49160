/* The Build page (/datasets/build?folder=NAME): make a dataset in a --data-dir folder of
 * datasets, add, rename and remove classes, add images to a class by choosing or dropping files
 * (a zip, a folder), or from the camera (hold the button: a frame every 250 ms). Uploads go in
 * batches under the server's limits; the counts are the server's answer after each. Each class
 * shows its newest images as small pictures; a wrong one is removed with its ×. Nothing is
 * deleted: the server sets a removed image or class aside in the dataset's quarantine, and
 * Undo (the same journal as the Health page's) puts back the last change. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const FRAME_MS = 250;
  const FIRST_THUMBS = 12; // pictures a class card shows at first; "+N more" asks for the rest
  const MORE_THUMBS = 24;
  let limits = {};
  let name = null;
  let undo = null; // what Undo puts back: the server's {fix, what}

  const base = () => '/api/datasets/folder/' + encodeURIComponent(name);
  const classUrl = (cls) => base() + '/classes/' + encodeURIComponent(cls);
  const status = (text) => { SL.$('build-status').textContent = text; };
  const plural = (n, word) => SL.int(n) + ' ' + word + (n === 1 ? '' : 's');
  // A folder's hidden files ("cats/.DS_Store") are no images anyone chose.
  const visible = (files) => files.filter((p) => !/(^|\/)\./.test(p.name));

  // cls null: the folder's unlabelled/ (the Label page's pool), else a class
  const uploadUrl = (cls) => (cls === null ? base() + '/unlabelled/images' : classUrl(cls) + '/images');
  const where = (cls) => (cls === null ? 'the images to label later' : cls);

  async function upload(cls, files) {
    const plan = SL.uploadBatches(visible(files), limits);
    let saved = 0;
    const skipped = plan.tooLarge.slice();
    let answer = null;
    SL.showError('build-error', null);
    for (const batch of plan.batches) {
      const form = new FormData();
      for (const p of batch) form.append('files', p.file, p.name);
      status('Adding ' + batch.length + ' images to ' + where(cls) + '…');
      try {
        answer = await SL.api(uploadUrl(cls), {method: 'POST', form});
        saved += answer.saved.length;
        skipped.push(...answer.skipped);
      } catch (err) {
        SL.showError('build-error', err.message);
        break;
      }
    }
    if (answer) render(answer);
    status(plural(saved, 'image') + ' added to ' + where(cls) +
      (skipped.length ? '; not added: ' + skipped.map((s) => s.file + ' (' + s.error + ')').join('; ') : '.'));
  }

  // ------------------------------------------------------------------ classes
  function thumb(cls, image) {
    const src = classUrl(cls) + '/images/' + encodeURIComponent(image.file) + '?v=' + encodeURIComponent(image.v);
    const remove = el('button', {type: 'button', class: 'thumb-remove', title: 'Remove ' + image.file + ' (set aside: Undo puts it back)',
      'aria-label': 'Remove ' + image.file + ' from ' + cls}, '×');
    remove.addEventListener('click', () => removeImage(cls, image.file));
    return el('figure', {class: 'class-thumb', dataset: {file: image.file}},
      el('img', {src, alt: image.file, title: image.file, width: 64, height: 64}), remove);
  }

  // The class's pictures from `offset` on, appended to its card's box; a "+N more" button
  // while there are more than shown.
  async function showThumbs(card, cls, offset, limit) {
    const box = card.querySelector('.class-thumbs');
    const more = card.querySelector('.thumbs-more');
    try {
      const page = await SL.api(classUrl(cls) + '/images?offset=' + offset + '&limit=' + limit);
      for (const image of page.images) box.appendChild(thumb(cls, image));
      const shown = offset + page.images.length;
      const left = page.total - shown;
      more.hidden = left <= 0;
      more.textContent = '+' + SL.int(left) + ' more';
      more.onclick = () => showThumbs(card, cls, shown, MORE_THUMBS);
    } catch (err) {
      box.appendChild(el('p', {class: 'error-text small'}, 'Cannot list the images: ' + err.message));
    }
  }

  function dropZone(cls) {
    const input = el('input', {type: 'file', multiple: true, accept: 'image/*,.zip,application/zip', class: 'visually-hidden',
      'aria-label': 'add images to ' + where(cls)});
    input.addEventListener('change', () => {
      upload(cls, [...input.files].map((f) => ({file: f, name: f.name})));
      input.value = ''; // the same files chosen again are a new change
    });
    const drop = el('label', {class: 'drop-zone'}, input,
      el('span', {class: 'drop-title'}, 'Drop images, a zip or a folder here'),
      el('span', {class: 'muted small'}, 'or click to choose files'));
    SL.dropZone(drop, (files) => upload(cls, files),
      {folders: true, onError: (err) => SL.showError('build-error', 'Cannot read what was dropped: ' + (err.message || err))});
    const capture = el('button', {type: 'button', class: 'capture', disabled: !SL.$('camera').srcObject,
      title: 'Start the camera first'}, 'Hold to capture');
    holdToCapture(capture, cls);
    return {drop, capture};
  }

  // Images with no label yet: they wait in unlabelled/ for the Label page.
  function poolCard(waiting) {
    const {drop, capture} = dropZone(null);
    const label = el('a', {class: 'button small', id: 'build-label', href: '/datasets/label?folder=' + encodeURIComponent(name),
      hidden: !waiting}, 'Label them');
    return el('section', {class: 'card class-card', id: 'build-pool'},
      el('div', {class: 'card-head'},
        el('h3', null, 'To label later ', el('span', {class: 'badge', dataset: {count: String(waiting)}}, plural(waiting, 'image'))),
        el('div', {class: 'button-row'}, label)),
      el('p', {class: 'muted small'}, 'No class yet? Add them here (unlabelled/); the Label page asks for the labels that matter first.'),
      el('div', {class: 'button-row'}, capture), drop);
  }

  function classCard(cls, count) {
    const {drop, capture} = dropZone(cls);
    const rename = el('button', {type: 'button', class: 'small secondary'}, 'Rename');
    rename.addEventListener('click', () => renameClass(cls));
    const remove = el('button', {type: 'button', class: 'small danger'}, 'Remove class');
    remove.addEventListener('click', () => removeClass(cls, count));
    const card = el('section', {class: 'card class-card', dataset: {cls}},
      el('div', {class: 'card-head'},
        el('h3', null, cls, ' ', el('span', {class: 'badge', dataset: {count: String(count)}}, plural(count, 'image'))),
        el('div', {class: 'button-row'}, rename, remove)),
      el('div', {class: 'class-thumbs'}),
      el('button', {type: 'button', class: 'link thumbs-more', hidden: true}),
      el('div', {class: 'button-row'}, capture), drop);
    if (count) showThumbs(card, cls, 0, FIRST_THUMBS);
    return card;
  }

  function render(answer) {
    const box = SL.clear(SL.$('build-classes'));
    const classes = Object.entries(answer.classes || {});
    for (const [cls, count] of classes) box.appendChild(classCard(cls, count));
    if (!classes.length) box.appendChild(el('p', {class: 'muted'}, 'No class yet: add one above, or add images to label later.'));
    box.appendChild(poolCard(answer.waiting || 0));
    undo = answer.undo || null;
    SL.$('build-undo-row').hidden = !answer.undo;
    SL.$('build-undo').textContent = answer.undo ? 'Undo: ' + answer.undo.what : 'Undo';
  }

  // Every change below is the server's: the page shows its answer (counts, what Undo does).
  async function change(url, json, said) {
    SL.showError('build-error', null);
    try {
      const answer = await SL.api(url, {method: 'POST', json});
      render(answer);
      status(said(answer));
    } catch (err) { SL.showError('build-error', err.message); }
  }

  async function renameClass(cls) {
    const to = window.prompt('New name for ' + cls, cls);
    if (!to || to === cls) return;
    await change(classUrl(cls) + '/rename', {name: to}, () => 'Renamed ' + cls + ' to ' + to + '.');
  }

  const setAside = (answer) => 'Removed ' + answer.removed.join(', ') + ': set aside in the dataset\'s quarantine; Undo puts it back.';

  function removeImage(cls, file) {
    return change(classUrl(cls) + '/images/' + encodeURIComponent(file) + '/remove', undefined, setAside);
  }

  async function removeClass(cls, count) {
    const sure = window.confirm('Remove class ' + cls + (count ? ' and its ' + plural(count, 'image') : '') +
      '?\nNothing is deleted: it is set aside in the dataset\'s quarantine, and Undo puts it back.');
    if (sure) await change(classUrl(cls) + '/remove', undefined, setAside);
  }

  function putBack() {
    if (!undo) return;
    const what = undo.what;
    return change(base() + '/put-back', {fix: undo.fix}, () => what.charAt(0).toUpperCase() + what.slice(1) + '.');
  }

  // ------------------------------------------------------------------ camera
  async function startCamera() {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: false});
      const video = SL.$('camera');
      video.srcObject = stream;
      video.hidden = false;
      SL.$('camera-start').disabled = true;
      for (const b of document.querySelectorAll('button.capture')) { b.disabled = false; b.title = 'Hold: a frame every ' + FRAME_MS + ' ms'; }
      status('Camera on: hold the button of a class to capture frames into it.');
    } catch (err) {
      SL.showError('build-error', 'No camera: ' + err.message);
    }
  }

  function frame() {
    const video = SL.$('camera');
    const canvas = el('canvas', {width: video.videoWidth, height: video.videoHeight});
    canvas.getContext('2d').drawImage(video, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.92));
  }

  function holdToCapture(button, cls) {
    let timer = null;
    let frames = [];
    const take = async () => { const blob = await frame(); if (blob) frames.push(blob); status(frames.length + ' frames for ' + where(cls) + '…'); };
    const start = (e) => {
      e.preventDefault();
      if (timer || button.disabled) return;
      frames = [];
      take();
      timer = setInterval(take, FRAME_MS);
    };
    const stop = async () => {
      if (!timer) return;
      clearInterval(timer);
      timer = null;
      await new Promise((r) => setTimeout(r, 50)); // the last frame's toBlob
      const stamp = Date.now();
      await upload(cls, frames.map((b, i) => ({file: b, name: 'camera-' + stamp + '-' + i + '.jpg'})));
    };
    button.addEventListener('pointerdown', start);
    for (const ev of ['pointerup', 'pointerleave', 'pointercancel']) button.addEventListener(ev, stop);
  }

  // ------------------------------------------------------------------ datasets
  async function open(folder) {
    name = folder;
    SL.$('build-dataset').hidden = false;
    SL.$('build-name').textContent = folder;
    SL.$('build-health').href = '/datasets/health?folder=' + encodeURIComponent(folder);
    SL.$('build-train').href = '/train?folder=' + encodeURIComponent(folder);
    try {
      render(await SL.api(base() + '/classes'));
    } catch (err) { SL.showError('build-error', err.message); }
  }

  async function createDataset(event) {
    event.preventDefault();
    const wanted = SL.$('new-dataset-name').value.trim();
    try {
      const made = await SL.api('/api/datasets/folder', {method: 'POST', json: {name: wanted}});
      history.replaceState(null, '', '/datasets/build?folder=' + encodeURIComponent(made.name));
      await open(made.name);
      status('Made ' + made.name + ': add its classes.');
    } catch (err) { SL.showError('build-error', err.message); }
  }

  async function addClass(event) {
    event.preventDefault();
    const input = SL.$('new-class-name');
    try {
      render(await SL.api(base() + '/classes', {method: 'POST', json: {name: input.value.trim()}}));
      status('Added class ' + input.value.trim() + '.');
      input.value = '';
    } catch (err) { SL.showError('build-error', err.message); }
  }

  async function start() {
    SL.$('new-dataset').addEventListener('submit', createDataset);
    SL.$('new-class').addEventListener('submit', addClass);
    SL.$('camera-start').addEventListener('click', startCamera);
    SL.$('build-undo').addEventListener('click', putBack);
    try {
      const [health, data] = await Promise.all([SL.api('/api/health'), SL.api('/api/datasets')]);
      limits = health.limits || {};
      if (!(data.collections || []).length) {
        SL.$('new-dataset-submit').disabled = true;
        SL.$('new-dataset-why').textContent = 'Start the server with --data-dir FOLDER (a folder of datasets, made if missing) to make datasets here.';
      }
      const folder = SL.param('folder');
      if (folder && (data.folders || []).some((f) => f.name === folder)) await open(folder);
    } catch (err) {
      SL.showError('build-error', err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
