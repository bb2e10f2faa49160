/* The Train page (/train): a form for POST /api/jobs, the same choices as `sightline train`.
 *
 * The model follows the data (GET /api/models: a built-in dataset's own default, else the
 * folders' one) until the user picks one. A named recipe (GET /api/recipes) picks the dataset,
 * classes and model. Only fields the user changed are sent, so the server resolves everything
 * else exactly as the command line would (a folder's recipe included).
 *
 * What the server would train with is its own answer, never worked out here: whenever the
 * form changes, POST /api/jobs/plan (the same body, the same plan code, nothing queued) gives
 * the resolved options, the steps and the plan's notes. The fields the user has not typed in
 * show those values (an emptied one shows them as its placeholder), the notes are listed, and
 * epochs that train fewer steps than the folder recipe would get a warning with the numbers. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  // default key → [input id, parse]: top-level request fields, then TrainConfig options
  const TOP_FIELDS = {epochs: ['train-epochs', 'int'], batch_size: ['train-batch-size', 'int'],
    lr: ['train-lr', 'float'], patience: ['train-patience', 'int']};
  const OPTION_FIELDS = {optimizer: ['train-optimizer', 'text'], weight_decay: ['train-weight-decay', 'float'],
    seed: ['train-seed', 'int'], balance: ['train-balance', 'bool'], augment: ['train-augment', 'text'],
    mixup: ['train-mixup', 'float'], cutmix: ['train-cutmix', 'float'], track: ['train-track', 'text']};
  let datasets = {builtin: [], folders: []};
  let models = [];
  // "another timm model": any name timm knows, typed, answered by GET /api/models/{name}
  const OTHER = '__timm__';
  let other = {name: '', row: null, error: ''};
  let modelDefaults = {folders: null, datasets: {}}; // GET /api/models: default, dataset_defaults
  let recipes = [];
  const PLAN_DELAY_MS = 350; // typing pauses this long before the plan is asked again
  let planTimer = null;
  let planSeq = 0;

  const source = () => (SL.$('source-folder').checked ? 'folder' : 'builtin');
  const otherChosen = () => SL.$('train-model').value === OTHER;
  const model = () => (otherChosen() ? other.row : models.find((m) => m.name === SL.$('train-model').value) || null);
  // What the request names: a typed name gets the registry's prefix (timm's own names are bare).
  const typedName = () => {
    const t = SL.$('train-model-other').value.trim();
    return !t || t.startsWith('timm:') ? t : 'timm:' + t;
  };
  const knownOther = () => Boolean(other.row) && other.name === typedName();
  const modelName = () => (otherChosen() ? typedName() : SL.$('train-model').value);
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

  function currentFolder() {
    return datasets.folders.find((x) => x.name === SL.$('train-folder').value);
  }

  // A folder's labels files (.csv of path,label[,split] rows) are other ways to train on it.
  function currentLabels() {
    const f = currentFolder();
    const name = SL.$('train-labels').value;
    return f && name ? (f.labels_files || []).find((l) => l.name === name) : null;
  }

  function renderLabels() {
    const f = currentFolder();
    const files = (f && f.labels_files) || [];
    const select = SL.clear(SL.$('train-labels'));
    if (f && !f.error) select.appendChild(el('option', {value: ''}, 'its class folders'));
    for (const l of files) {
      select.appendChild(el('option', {value: l.name, disabled: Boolean(l.error)},
        l.name + (l.error ? ' (cannot be read: ' + l.error + ')' : ' (' + SL.int(l.images) + ' images)')));
    }
    const wanted = SL.param('labels');
    if (wanted && files.some((l) => l.name === wanted && !l.error)) select.value = wanted;
    SL.$('labels-field').hidden = source() !== 'folder' || !files.length;
  }

  function currentClasses() {
    if (source() === 'folder') {
      const l = currentLabels();
      const f = l || currentFolder();
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
    if (!SL.$('train-labels').dataset.folder || SL.$('train-labels').dataset.folder !== SL.$('train-folder').value) {
      SL.$('train-labels').dataset.folder = SL.$('train-folder').value;
      renderLabels();
    }
    SL.$('labels-field').hidden = !folder || !((currentFolder() || {}).labels_files || []).length;
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
    SL.$('model-other-field').hidden = !otherChosen();
    SL.$('model-description').textContent = m ? m.description || ''
      : otherChosen() ? other.error || 'Type the name of any timm architecture or pretrained tag.' : '';
    const pretrained = SL.$('train-pretrained');
    pretrained.disabled = !(m && m.pretrained) || Boolean(recipe()); // a recipe trains from scratch
    if (pretrained.disabled) pretrained.checked = false;
    SL.setText('pretrained-why', !pretrained.disabled ? ''
      : recipe() ? 'A recipe trains its model from scratch.'
        : `${m ? m.name : 'This model'} has no pretrained weights (efficientnet-lite0 has).`);
    // With pretrained weights, `sightline train --pretrained` layers its own defaults on top.
    const defaults = {...((m && m.defaults) || {}), ...(pretrained.checked ? (m && m.pretrained_defaults) || {} : {}),
      ...((recipe() && recipe().train_options) || {})};
    // At once, until the plan answers: the model's (and recipe's) own values.
    for (const [key, [id]] of Object.entries({...TOP_FIELDS, ...OPTION_FIELDS})) {
      const input = SL.$(id);
      if (input.dataset.edited) continue;
      input.value = defaults[key] === null || defaults[key] === undefined ? '' : String(defaults[key]);
    }
    schedulePlan();
  }

  /* ---------------------------------------------------------------- the plan preview */

  function schedulePlan() {
    // A change makes every answer in flight stale at once (not only when the next request
    // leaves): an older plan must not overwrite what the form now shows.
    const seq = ++planSeq;
    window.clearTimeout(planTimer);
    planTimer = window.setTimeout(() => loadPlan(seq), PLAN_DELAY_MS);
  }

  async function loadPlan(seq) {
    let body;
    if (otherChosen() && !knownOther()) { showPlan(null); return; } // typing a name: no plan yet
    try {
      body = buildRequest();
    } catch (err) { // a field that is no number: said as a submit would say it
      SL.showError('train-error', err.message);
      showPlan(null);
      return;
    }
    try {
      const planned = await SL.api('/api/jobs/plan', {method: 'POST', json: body});
      if (seq !== planSeq) return; // the form changed since: a newer answer is coming
      SL.showError('train-error', null);
      showPlan(planned);
    } catch (err) {
      if (seq !== planSeq) return;
      SL.showError('train-error', SL.webText(err.message));
      showPlan(null);
    }
  }

  const shown = (v, kind) => (v === null || v === undefined ? '' : String(kind === 'float' && SL.isNum(v) ? Number(v.toPrecision(6)) : v));

  function showPlan(p) {
    const warning = SL.$('train-steps-warning');
    const notes = SL.clear(SL.$('train-plan-notes'));
    if (!p) {
      SL.$('train-plan').textContent = '';
      warning.hidden = true;
      return;
    }
    const o = p.options || {};
    for (const [key, [id, kind]] of Object.entries({...TOP_FIELDS, ...OPTION_FIELDS})) {
      const input = SL.$(id);
      if (input.tagName === 'INPUT') input.placeholder = shown(o[key], kind) || input.dataset.placeholder || '';
      if (!input.dataset.edited) input.value = shown(o[key], kind);
    }
    let text = 'Planned: ' + SL.plural(o.epochs, 'epoch');
    if (p.steps && p.data) {
      const d = p.data;
      text += ' × ' + SL.plural(p.steps.per_epoch, 'step') + ' of ' + SL.int(o.batch_size) + ' images = ' +
        SL.plural(p.steps.total, 'optimizer step') + (p.steps.stop < p.steps.total ? ' (stopped after ' + SL.int(p.steps.stop) + ')' : '') +
        ', on ' + SL.plural(d.train, 'training image') + (d.val ? ', validated on ' + SL.int(d.val) : ', no validation split') + '.';
    } else {
      text += ' at batch ' + SL.int(o.batch_size) + '; the steps per epoch are known once the data is loaded.';
    }
    SL.$('train-plan').textContent = text;
    const s = p.short_of_recipe;
    warning.hidden = !s;
    warning.textContent = !s ? '' : SL.plural(s.epochs, 'epoch') + ' × ' + SL.plural(s.steps_per_epoch, 'step') + ' = ' +
      SL.plural(s.steps, 'step') + '; the recipe would train ' + SL.int(s.recipe_steps) + ' (' + SL.plural(s.recipe_epochs, 'epoch') +
      '): a model learning from scratch needs a few hundred. Empty ' + SL.optionName('epochs') + ' to train the recipe\'s.';
    for (const n of p.notes || []) notes.appendChild(el('li', null, SL.webText(n.text)));
  }

  function parse(id, kind, label) {
    const raw = SL.$(id).value.trim();
    if (raw === '') return undefined;
    if (kind === 'text') return raw;
    if (kind === 'bool') return raw === 'true';
    const value = Number(raw);
    if (!isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
      throw new Error(label + ': ' + JSON.stringify(raw) + ' is not ' + (kind === 'int' ? 'a whole number' : 'a number'));
    }
    return value;
  }

  function buildRequest() {
    const body = {};
    if (source() === 'folder') {
      body.folder = SL.$('train-folder').value;
      if (currentLabels()) body.labels = currentLabels().name;
    } else body.dataset = SL.$('train-dataset').value;
    const classes = [...document.querySelectorAll('#train-classes input:checked')].map((c) => c.value);
    if (classes.length) body.classes = classes;
    if (otherChosen() && !knownOther()) throw new Error(other.error || 'Type the name of a timm model under Model.');
    body.model = modelName();
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
      SL.showError('train-error', SL.webText(err.message));
      button.disabled = false;
      SL.$('train-status').textContent = '';
    }
  }

  function fillSelect(select, names, chosen) {
    SL.clear(select);
    for (const n of names) select.appendChild(el('option', {value: n}, n));
    if (chosen && names.includes(chosen)) select.value = chosen;
  }

  // The typed timm name, looked up (its description, whether it has pretrained weights, its
  // defaults) once typing pauses; an unknown one shows the server's nearest names.
  let otherTimer = null;
  function lookUpOther() {
    window.clearTimeout(otherTimer);
    otherTimer = window.setTimeout(async () => {
      const name = typedName();
      if (name === other.name) return;
      other = {name, row: null, error: ''};
      renderModel();
      if (!name) return;
      try {
        const row = await SL.api('/api/models/' + encodeURIComponent(name));
        if (typedName() === name) other.row = row;
      } catch (err) {
        if (typedName() === name) other.error = err.message;
      }
      if (typedName() === name) renderModel();
    }, PLAN_DELAY_MS);
  }

  async function start() {
    const form = SL.$('train-form');
    // Help written once for every face (the options' declarations) names the command line's
    // flags: here, the fields that set them.
    for (const help of document.querySelectorAll('[data-cli-text]')) help.textContent = SL.webText(help.textContent);
    // A field the user typed in is theirs: neither the model nor the plan overwrites it, and it
    // is sent. Emptied, it is not sent and shows the plan's value as its placeholder (refilling
    // it would fight the user's typing).
    for (const [id] of Object.values({...TOP_FIELDS, ...OPTION_FIELDS})) {
      const input = SL.$(id);
      input.dataset.placeholder = input.placeholder || '';
      const mark = () => { input.dataset.edited = '1'; };
      input.addEventListener('input', mark);
      input.addEventListener('change', mark);
    }
    form.addEventListener('submit', submit);
    // Any change of the form (the data, the model, a field, a class) asks the plan again.
    form.addEventListener('input', schedulePlan);
    form.addEventListener('change', schedulePlan);
    SL.$('source-builtin').addEventListener('change', renderSource);
    SL.$('source-folder').addEventListener('change', renderSource);
    SL.$('train-dataset').addEventListener('change', renderSource);
    SL.$('train-folder').addEventListener('change', renderSource);
    SL.$('train-labels').addEventListener('change', renderSource);
    SL.$('train-model').addEventListener('change', () => { SL.$('train-model').dataset.chosen = '1'; renderModel(); });
    SL.$('train-model-other').addEventListener('input', lookUpOther);
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
      SL.$('train-model').appendChild(el('option', {value: OTHER}, 'another timm model (type its name)…'));
      if (SL.param('model')) {
        SL.$('train-model').dataset.chosen = '1';
        if (SL.param('model').startsWith('timm:') && !models.some((m) => m.name === SL.param('model'))) {
          SL.$('train-model').value = OTHER;
          SL.$('train-model-other').value = SL.param('model');
          lookUpOther();
        }
      }
      if (SL.param('recipe') && recipes.some((r) => r.name === SL.param('recipe'))) SL.$('train-recipe').value = SL.param('recipe');
      renderRecipe();
      SL.$('submit-train').disabled = false;
    } catch (err) {
      SL.showError('train-error', 'Cannot load the datasets, models and recipes: ' + err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
