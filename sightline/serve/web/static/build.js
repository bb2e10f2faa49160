/* The Build page (/datasets/build?folder=NAME): make a dataset in a --data-dir folder of
 * datasets, add and rename classes, add images to a class by choosing or dropping files (or a
 * zip), or from the camera (hold the button: a frame every 250 ms). Uploads go in batches under
 * the server's limits; the counts are the server's answer after each. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const FRAME_MS = 250;
  let limits = {};
  let name = null;

  const base = () => '/api/datasets/folder/' + encodeURIComponent(name);
  const status = (text) => { SL.$('build-status').textContent = text; };

  async function upload(cls, files) {
    const plan = SL.uploadBatches(files, limits);
    let saved = 0;
    const skipped = plan.tooLarge.slice();
    let answer = null;
    for (const batch of plan.batches) {
      const form = new FormData();
      for (const p of batch) form.append('files', p.file, p.name);
      status('Adding ' + batch.length + ' images to ' + cls + '…');
      try {
        answer = await SL.api(base() + '/classes/' + encodeURIComponent(cls) + '/images', {method: 'POST', form});
        saved += answer.saved.length;
        skipped.push(...answer.skipped);
      } catch (err) {
        SL.showError('build-error', err.message);
        break;
      }
    }
    if (answer) render(answer);
    status(saved + ' image' + (saved === 1 ? '' : 's') + ' added to ' + cls +
      (skipped.length ? '; not added: ' + skipped.map((s) => s.file + ' (' + s.error + ')').join('; ') : '.'));
  }

  function classCard(cls, count) {
    const input = el('input', {type: 'file', multiple: true, accept: 'image/*,.zip', 'aria-label': 'add images to ' + cls});
    input.addEventListener('change', () => upload(cls, [...input.files].map((f) => ({file: f, name: f.name}))));
    const drop = el('label', {class: 'drop-zone'}, 'Drop images or a zip here, or choose files', input);
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      upload(cls, [...e.dataTransfer.files].map((f) => ({file: f, name: f.name})));
    });
    const capture = el('button', {type: 'button', class: 'capture', disabled: !SL.$('camera').srcObject,
      title: 'Start the camera first'}, 'Hold to capture');
    holdToCapture(capture, cls);
    const rename = el('button', {type: 'button', class: 'small secondary'}, 'Rename');
    rename.addEventListener('click', () => renameClass(cls));
    return el('section', {class: 'card class-card', dataset: {cls}},
      el('h3', null, cls, ' ', el('span', {class: 'badge', dataset: {count: String(count)}}, SL.int(count) + ' images')),
      el('div', {class: 'button-row'}, capture, rename), drop);
  }

  function render(answer) {
    const box = SL.clear(SL.$('build-classes'));
    const classes = Object.entries(answer.classes || {});
    for (const [cls, count] of classes) box.appendChild(classCard(cls, count));
    if (!classes.length) box.appendChild(el('p', {class: 'muted'}, 'No class yet: add one above.'));
  }

  async function renameClass(cls) {
    const to = window.prompt('New name for ' + cls, cls);
    if (!to || to === cls) return;
    try {
      render(await SL.api(base() + '/classes/' + encodeURIComponent(cls) + '/rename', {method: 'POST', json: {name: to}}));
      status('Renamed ' + cls + ' to ' + to + '.');
    } catch (err) { SL.showError('build-error', err.message); }
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
    const take = async () => { const blob = await frame(); if (blob) frames.push(blob); status(frames.length + ' frames for ' + cls + '…'); };
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
