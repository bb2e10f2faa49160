/* The Train page (/train): a form for POST /api/jobs, the same choices as `sightline train`.
 *
 * The model follows the data (GET /api/models: a built-in dataset's own default, else the
 * folders' one) until the user picks one. The number fields show the chosen model's defaults
 * and follow the model
 * while the user has not typed in them; only fields the user changed are sent, so the server
 * resolves everything else exactly as the command line would (a folder's recipe included).
 * A named recipe (GET /api/recipes) picks the dataset, classes and model and shows its options
 * as the defaults; the server applies it, with any field the user changed on top. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  // default key → [input id, parse]: top-level request fields, then TrainConfig options
  const TOP_FIELDS = {epochs: ['train-epochs', 'int'], batch_size: ['train-batch-size', 'int'],
    lr: ['train-lr', 'float'], patience: ['train-patience', 'int']};
  const OPTION_FIELDS = {optimizer: ['train-optimizer', 'text'], weight_decay: ['train-weight-decay', 'float'],
    seed: ['train-seed', 'int']};
  let datasets = {builtin: [], folders: []};
  let models = [];
  let modelDefaults = {folders: null, datasets: {}}; // GET /api/models: default, dataset_defaults
  let recipes = [];

  const source = () => (SL.$('source-folder').checked ? 'folder' : 'builtin');
  const model = () => models.find((m) => m.name === SL.$('train-model').value) || null;
  const recipe = () => recipes.find((r) => r.name === SL.$('train-recipe').value) || null;
  const defaultModel = () => (source() === 'folder' ? modelDefaults.folders
    : modelDefaults.datasets[SL.$('train-dataset').value] || modelDefaults.folders);

  function recipeClasses(r) {
    const c = r && r.data_options && r.data_options.classes;
    return !c ? [] : (Array.isArray(c) ? c : String(c).split(',')).map((x) => String(x).trim());
  }

  function renderRecipe() {
    const r = recipe();
    SL.$('recipe-description').textContent = r ? r.description + (r.measured ? ' Measured: ' + r.measured + '.' : '') : '';
    SL.$('train-model').disabled = Boolean(r);
    if (r) {
      SL.$('source-builtin').checked = true;
      if (datasets.builtin.some((d) => d.name === r.dataset)) SL.$('train-dataset').value = r.dataset;
      SL.$('train-model').value = r.model;
    }
    renderSource();
    const wanted = recipeClasses(r);
    for (const box of document.querySelectorAll('#train-classes input')) box.checked = wanted.includes(box.value);
  }

  function currentClasses() {
    if (source() === 'folder') {
      const f = datasets.folders.find((x) => x.name === SL.$('train-folder').value);
      return f && !f.error ? (f.classes || []).map((c) => ({name: c.name, hint: SL.int(c.images)})) : [];
    }
    const d = datasets.builtin.find((x) => x.name === SL.$('train-dataset').value);
    return d ? (d.classes || []).map((c) => ({name: String(c)})) : [];
  }

  function renderSource() {
    const folder = source() === 'folder';
    SL.$('dataset-field').hidden = folder;
    SL.$('folder-field').hidden = !folder;
    SL.$('folder-options').hidden = !folder;
    const box = SL.clear(SL.$('train-classes'));
    for (const c of currentClasses()) {
      box.appendChild(el('label', {class: 'check'}, el('input', {type: 'checkbox', name: 'class', value: c.name}),
        c.name, c.hint ? el('span', {class: 'muted'}, ' (' + c.hint + ')') : null));
    }
    if (!box.firstChild) box.appendChild(el('span', {class: 'muted'}, 'No classes found.'));
    const select = SL.$('train-model');
    if (!recipe() && !select.dataset.chosen && defaultModel()) select.value = defaultModel();
    renderModel();
  }

  function renderModel() {
    const m = model();
    SL.$('model-description').textContent = m ? m.description || '' : '';
    const pretrained = SL.$('train-pretrained');
    pretrained.disabled = !(m && m.pretrained) || Boolean(recipe()); // a recipe trains from scratch
    if (pretrained.disabled) pretrained.checked = false;
    SL.setText('pretrained-why', !pretrained.disabled ? ''
      : recipe() ? 'A recipe trains its model from scratch.'
        : `${m ? m.name : 'This model'} has no pretrained weights (efficientnet-lite0 has).`);
    // With pretrained weights, `sightline train --pretrained` layers its own defaults on top.
    const defaults = {...((m && m.defaults) || {}), ...(pretrained.checked ? (m && m.pretrained_defaults) || {} : {}),
      ...((recipe() && recipe().train_options) || {})};
    for (const [key, [id]] of Object.entries({...TOP_FIELDS, ...OPTION_FIELDS})) {
      const input = SL.$(id);
      if (input.dataset.edited) continue;
      input.value = defaults[key] === null || defaults[key] === undefined ? '' : String(defaults[key]);
    }
    const note = SL.$('folder-note');
    note.hidden = !(source() === 'folder' && m && m.folder_note);
    note.textContent = (m && m.folder_note) || '';
  }

  function parse(id, kind, label) {
    const raw = SL.$(id).value.trim();
    if (raw === '') return undefined;
    if (kind === 'text') return raw;
    const value = Number(raw);
    if (!isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
      throw new Error(label + ': ' + JSON.stringify(raw) + ' is not ' + (kind === 'int' ? 'a whole number' : 'a number'));
    }
    return value;
  }

  function buildRequest() {
    const body = {};
    if (source() === 'folder') body.folder = SL.$('train-folder').value;
    else body.dataset = SL.$('train-dataset').value;
    const classes = [...document.querySelectorAll('#train-classes input:checked')].map((c) => c.value);
    if (classes.length) body.classes = classes;
    body.model = SL.$('train-model').value;
    if (recipe()) body.recipe = recipe().name;
    if (SL.$('train-pretrained').checked) body.pretrained = true;
    const options = {};
    for (const [fields, target] of [[TOP_FIELDS, body], [OPTION_FIELDS, options]]) {
      for (const [key, [id, kind]] of Object.entries(fields)) {
        if (!SL.$(id).dataset.edited) continue; // the model's default: let the server choose it
        const value = parse(id, kind, key.replace('_', ' '));
        if (value !== undefined) target[key] = value;
      }
    }
    if (Object.keys(options).length) body.options = options;
    const split = SL.$('train-val-split').value.trim();
    if (split) body.val_split = split === 'test' ? 'test' : parse('train-val-split', 'float', 'validation split');
    const held = SL.$('train-calibration-split').value.trim();
    if (held) body.calibration_split = parse('train-calibration-split', 'float', 'calibration split');
    const name = SL.$('train-name').value.trim();
    if (name) body.name = name;
    body.evaluate = SL.$('train-evaluate').checked;
    body.report = SL.$('train-report').checked;
    if (source() === 'folder') {
      const channels = SL.$('train-channels').value;
      if (channels) body.channels = Number(channels);
      const size = SL.$('train-size').value.trim().toLowerCase();
      if (size) {
        const parts = size.split(/\s*[x×,]\s*/).map(Number);
        if (!parts.every((p) => Number.isInteger(p) && p > 0) || parts.length > 2) throw new Error('input size: give 64 or 64x48');
        body.size = parts.length === 1 ? parts[0] : parts;
      }
      const resize = SL.$('train-resize').value;
      if (resize) body.resize = resize;
    }
    return body;
  }

  async function submit(e) {
    e.preventDefault();
    SL.showError('train-error', null);
    let body;
    try {
      body = buildRequest();
    } catch (err) {
      SL.showError('train-error', err.message);
      return;
    }
    const button = SL.$('submit-train');
    button.disabled = true;
    SL.$('train-status').textContent = 'Starting…';
    try {
      const job = await SL.api('/api/jobs', {method: 'POST', json: body});
      window.location.href = SL.jobUrl(job.id);
    } catch (err) {
      SL.showError('train-error', err.message);
      button.disabled = false;
      SL.$('train-status').textContent = '';
    }
  }

  function fillSelect(select, names, chosen) {
    SL.clear(select);
    for (const n of names) select.appendChild(el('option', {value: n}, n));
    if (chosen && names.includes(chosen)) select.value = chosen;
  }

  async function start() {
    const form = SL.$('train-form');
    // A field the user typed in is theirs: model changes no longer overwrite it, and it is sent.
    for (const [id] of Object.values({...TOP_FIELDS, ...OPTION_FIELDS})) {
      const input = SL.$(id);
      const mark = () => { input.dataset.edited = '1'; };
      input.addEventListener('input', mark);
      input.addEventListener('change', mark);
    }
    form.addEventListener('submit', submit);
    SL.$('source-builtin').addEventListener('change', renderSource);
    SL.$('source-folder').addEventListener('change', renderSource);
    SL.$('train-dataset').addEventListener('change', renderSource);
    SL.$('train-folder').addEventListener('change', renderSource);
    SL.$('train-model').addEventListener('change', () => { SL.$('train-model').dataset.chosen = '1'; renderModel(); });
    SL.$('train-pretrained').addEventListener('change', renderModel);
    SL.$('train-recipe').addEventListener('change', renderRecipe);
    try {
      const [ds, ms, rs] = await Promise.all([SL.api('/api/datasets'), SL.api('/api/models'), SL.api('/api/recipes')]);
      recipes = rs.recipes || [];
      for (const r of recipes) SL.$('train-recipe').appendChild(el('option', {value: r.name}, r.name));
      datasets = {builtin: ds.builtin || [], folders: ds.folders || []};
      models = ms.models || [];
      fillSelect(SL.$('train-dataset'), datasets.builtin.map((d) => d.name), SL.param('dataset') || 'fashion-mnist');
      fillSelect(SL.$('train-folder'), datasets.folders.map((f) => f.name), SL.param('folder'));
      SL.$('source-folder').disabled = !datasets.folders.length;
      SL.$('source-folder-why').hidden = datasets.folders.length > 0;
      if (SL.param('folder') && datasets.folders.length) SL.$('source-folder').checked = true;
      modelDefaults = {folders: ms.default, datasets: ms.dataset_defaults || {}};
      fillSelect(SL.$('train-model'), models.map((m) => m.name), SL.param('model') || defaultModel());
      if (SL.param('model')) SL.$('train-model').dataset.chosen = '1';
      if (SL.param('recipe') && recipes.some((r) => r.name === SL.param('recipe'))) SL.$('train-recipe').value = SL.param('recipe');
      renderRecipe();
      SL.$('submit-train').disabled = false;
    } catch (err) {
      SL.showError('train-error', 'Cannot load the datasets, models and recipes: ' + err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
