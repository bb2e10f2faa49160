/* The Health page (/datasets/health?folder=NAME): check a --data-dir folder, see its findings
 * grouped with pictures, fix them one by one (the recommended action first; keep / move /
 * quarantine, with keys in review mode) or all recommended fixes at once, revoke a keep, and
 * undo. Every action is one POST to /api/datasets/folder/NAME/...; the page shows the report
 * the server answers with (checked again after every change). */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const SHOWN = 24; // findings a group shows before "Show all"
  const KIND_TITLES = {
    corrupt: 'Cannot be read', leak: 'Test or validation images copied from training',
    duplicate: 'The same image twice', 'near-duplicate': 'Near copies', label: 'Filed in the wrong class?',
    'small-class': 'Classes with too few images', imbalance: 'Unbalanced classes', 'odd-size': 'Odd sizes and modes',
    outlier: 'Like none of the classes',
  };
  let report = null;
  let suspects = [];
  let position = 0;

  const folder = () => SL.$('health-folder').value;
  const base = () => '/api/datasets/folder/' + encodeURIComponent(folder());
  const imageUrl = (path, large) => base() + '/image?path=' + encodeURIComponent(path) + (large ? '&large=true' : '');

  function status(text) { SL.$('health-status').textContent = text; }

  function picture(path, large) {
    const img = el('img', {src: imageUrl(path, large), alt: path, loading: 'lazy', class: large ? 'large' : 'thumb'});
    img.addEventListener('error', () => img.replaceWith(el('span', {class: 'badge warn', title: path}, 'unreadable')));
    return img;
  }

  async function act(path, action, to) {
    SL.$('health-error').hidden = true;
    try {
      const answer = await SL.api(base() + '/review', {method: 'POST', json: {path, action, to: to || null}});
      render(answer);
      status(answer.moved ? 'Moved ' + answer.moved.from + ' to ' + answer.moved.to + '. Undo puts it back.'
        : 'Kept ' + path + ' as it is. Undo or Revoke takes that back.');
      return true;
    } catch (err) {
      SL.showError('health-error', err.message);
      return false;
    }
  }

  function actions(problem) {
    // What `sightline check --fix` would do comes first, as the one primary button; a finding
    // left for review has none, and keeping it is never the primary action.
    const advice = problem.recommended;
    // A leak's evaluation copy (first) goes, never the training image; else the later copy.
    const path = (advice && advice.path) || problem.path ||
      (problem.kind === 'leak' ? problem.paths[0] : problem.paths[problem.paths.length - 1]);
    const row = el('div', {class: 'button-row'});
    const kind = (action) => (advice && advice.action === action ? 'primary' : 'secondary');
    if (problem.kind === 'label') {
      row.appendChild(button('Move to ' + problem.suggested, () => act(path, 'move', problem.suggested), kind('move')));
    }
    if (problem.kind !== 'small-class' && problem.kind !== 'imbalance') {
      row.appendChild(button('Quarantine ' + path.split('/').pop(), () => act(path, 'quarantine'), kind('quarantine')));
    }
    row.appendChild(button('Keep as it is', () => act(path, 'keep'), 'secondary'));
    if (!advice && problem.kind !== 'small-class' && problem.kind !== 'imbalance') {
      row.appendChild(el('span', {class: 'muted'}, 'No fix recommended: look at it.'));
    }
    // the primary action first
    const first = [...row.children].find((b) => b.classList && b.classList.contains('primary'));
    if (first) row.prepend(first);
    return row;
  }

  function keptItem(problem) {
    const paths = problem.paths || [problem.path];
    const path = paths[paths.length - 1];
    const row = el('div', {class: 'button-row'}, button('Revoke', () => revoke(path), 'secondary'));
    return el('li', {class: 'finding'}, el('div', {class: 'thumbs'}, paths.map((p) => el('figure', null,
      problem.kind === 'corrupt' ? el('span', {class: 'badge warn'}, 'unreadable') : picture(p, false),
      el('figcaption', {class: 'wrap'}, p)))),
    el('div', null, el('p', null, problem.kind + ': ' + problem.message), row));
  }

  async function revoke(path) {
    SL.$('health-error').hidden = true;
    try {
      render(await SL.api(base() + '/revoke', {method: 'POST', json: {path}}));
      status('Revoked: the findings about ' + path + ' are shown again.');
    } catch (err) {
      SL.showError('health-error', err.message);
    }
  }

  async function applyAll() {
    SL.$('health-error').hidden = true;
    const button = SL.$('health-apply');
    button.disabled = true;
    try {
      const answer = await SL.api(base() + '/apply', {method: 'POST', json: {}});
      render(answer);
      const a = answer.applied;
      status('Fix ' + a.fix + ': ' + a.quarantined + ' quarantined, ' + a.moved + ' moved to another class. Undo puts them all back.');
    } catch (err) {
      SL.showError('health-error', err.message);
      button.disabled = false;
    }
  }

  function button(text, onclick, cls) {
    const b = el('button', {type: 'button', class: 'small ' + (cls === 'primary' ? 'primary' : (cls || ''))}, text);
    b.addEventListener('click', onclick);
    return b;
  }

  function finding(problem) {
    const paths = problem.paths || [problem.path];
    const pictures = ['small-class', 'imbalance'].includes(problem.kind) ? []
      : paths.map((p) => el('figure', null, problem.kind === 'corrupt' ? el('span', {class: 'badge warn'}, 'unreadable')
        : picture(p, false), el('figcaption', {class: 'wrap'}, p)));
    return el('li', {class: 'finding'}, el('div', {class: 'thumbs'}, pictures),
      el('div', null, el('p', null, problem.message), actions(problem)));
  }

  function render(data) {
    report = data;
    suspects = (data.problems || []).filter((p) => p.kind === 'label');
    const summary = SL.clear(SL.$('health-summary'));
    const kinds = Object.entries(data.summary || {});
    summary.appendChild(el('p', null, SL.int(data.images) + ' readable images in ' + (data.classes || []).length +
      ' classes, checked in ' + SL.num(data.seconds, 1) + ' s. ' +
      (kinds.length ? 'Found: ' + kinds.map(([k, n]) => n + ' ' + k).join(', ') + '.' : 'No problems found.')));
    for (const note of data.notes || []) summary.appendChild(el('p', {class: 'muted'}, note));
    const health = data.labels && data.labels.health;
    if (health) {
      const confused = (health.confused || []).slice(0, 3).map((p) => p.classes.join(' / ') + ' (~' + p.images + ')');
      summary.appendChild(el('p', {class: 'muted', id: 'health-label-quality'}, 'Labels: about ' +
        SL.num(100 * health.label_quality, 1) + ' % right (~' + health.estimated_wrong +
        ' estimated wrong, an upper bound: the models\' own mistakes count too)' +
        (confused.length ? '; most confused: ' + confused.join(', ') : '') + '.'));
    }
    const groups = SL.clear(SL.$('health-groups'));
    for (const [kind, count] of kinds) {
      const items = data.problems.filter((p) => p.kind === kind);
      const list = el('ul', {class: 'findings'}, items.slice(0, SHOWN).map(finding));
      const section = el('section', {class: 'card', dataset: {kind}}, el('h2', null, (KIND_TITLES[kind] || kind) + ' (' + count + ')'), list);
      if (items.length > SHOWN) {
        const more = button('Show all ' + items.length, () => { SL.append(SL.clear(list), items.map(finding)); more.remove(); }, 'secondary');
        section.appendChild(more);
      }
      groups.appendChild(section);
    }
    const undo = SL.$('health-undo');
    undo.disabled = !data.can_undo;
    undo.title = data.can_undo ? 'Take back fix ' + data.can_undo + ' (a move or a keep)' : 'No fix to undo';
    const apply = SL.$('health-apply');
    apply.disabled = !data.recommended;
    apply.textContent = data.recommended ? 'Apply the ' + data.recommended + ' recommended fixes' : 'Apply the recommended fixes';
    apply.title = data.recommended ? 'What sightline check --fix does, in one fix: Undo puts it all back'
      : 'No finding has a recommended fix';
    const kept = data.kept || [];
    SL.$('health-kept').hidden = !kept.length;
    SL.append(SL.clear(SL.$('health-kept-list')), kept.map(keptItem));
    const review = SL.$('health-review-start');
    review.disabled = !suspects.length;
    review.title = suspects.length ? 'One suspect at a time, with keys' : 'No image is suspected of a wrong label';
    if (!SL.$('health-review').hidden) showSuspect();
  }

  // ------------------------------------------------------------------ review mode
  function showSuspect() {
    if (!suspects.length) { closeReview(); status('Every suspect is reviewed.'); return; }
    position = Math.min(position, suspects.length - 1);
    const p = suspects[position];
    SL.$('review-position').textContent = (position + 1) + ' of ' + suspects.length;
    SL.$('review-image').src = imageUrl(p.path, true);
    SL.$('review-image').alt = p.path;
    SL.$('review-caption').textContent = p.path + ': filed as ' + p.label;
    SL.$('review-message').textContent = p.message;
    SL.$('review-to').textContent = p.suggested;
    const select = SL.clear(SL.$('review-class'));
    for (const c of report.classes) select.appendChild(el('option', {value: c}, c));
    select.value = p.suggested;
    SL.$('review-to').textContent = select.value;
    // the recommended action is the one primary button, and has the focus
    const advice = p.recommended;
    for (const a of ['move', 'quarantine']) {
      SL.$('review-' + a).classList.toggle('secondary', !(advice && advice.action === a));
    }
    if (advice) SL.$('review-' + advice.action).focus();
    const box = SL.clear(SL.$('review-neighbours'));
    for (const [cls, path] of Object.entries(p.neighbours || {})) {
      box.appendChild(el('figure', {class: cls === p.suggested ? 'suggested' : (cls === p.label ? 'own' : '')},
        picture(path, false), el('figcaption', null, cls)));
    }
  }

  async function reviewAct(action) {
    const p = suspects[position];
    if (!p) return;
    if (action === 'next') { position = (position + 1) % suspects.length; showSuspect(); return; }
    await act(p.path, action, action === 'move' ? SL.$('review-class').value : null);
  }

  function openReview() { position = 0; SL.$('health-review').hidden = false; showSuspect(); }
  function closeReview() { SL.$('health-review').hidden = true; }

  function onKey(event) {
    if (SL.$('health-review').hidden || event.target.tagName === 'SELECT' || event.ctrlKey || event.metaKey || event.altKey) return;
    const action = {k: 'keep', m: 'move', q: 'quarantine', n: 'next', ArrowRight: 'next'}[event.key];
    if (action) { event.preventDefault(); reviewAct(action); }
    if (event.key === 'u') { event.preventDefault(); undo(); }
    if (event.key === 'Escape') closeReview();
  }

  // ------------------------------------------------------------------ check, undo
  async function check() {
    const button = SL.$('health-check');
    button.disabled = true;
    SL.$('health-error').hidden = true;
    status(SL.$('health-labels').checked ? 'Checking (the label search trains small models: seconds to a minute)…' : 'Checking…');
    try {
      render(await SL.api(base() + '/check', {method: 'POST', json: {labels: SL.$('health-labels').checked}}));
      status('Checked.');
    } catch (err) {
      SL.showError('health-error', err.message);
      status('');
    } finally {
      button.disabled = false;
    }
  }

  async function undo() {
    try {
      const answer = await SL.api(base() + '/undo', {method: 'POST', json: {}});
      render(answer);
      status(answer.unkept && answer.unkept.length
        ? 'Undid fix ' + answer.undone + ': ' + answer.unkept.length + ' kept ' + (answer.unkept.length > 1 ? 'findings are' : 'finding is') + ' reported again.'
        : 'Undid fix ' + answer.undone + ': ' + answer.restored.join(', ') + ' back where ' + (answer.restored.length > 1 ? 'they were.' : 'it was.'));
    } catch (err) {
      SL.showError('health-error', err.message);
    }
  }

  async function loadReport() {
    SL.$('health-train').href = '/train?folder=' + encodeURIComponent(folder());
    SL.clear(SL.$('health-summary'));
    SL.clear(SL.$('health-groups'));
    closeReview();
    try {
      const data = await SL.api(base() + '/health');
      if (data.checked) {
        render(data);
        status('The last check of this folder.');
      } else {
        status(data.checking ? 'Being checked…' : 'Not checked yet: press Check.');
      }
    } catch (err) {
      SL.showError('health-error', err.message);
    }
  }

  async function start() {
    SL.$('health-check').addEventListener('click', check);
    SL.$('health-undo').addEventListener('click', undo);
    SL.$('health-apply').addEventListener('click', applyAll);
    SL.$('health-review-start').addEventListener('click', openReview);
    SL.$('review-close').addEventListener('click', closeReview);
    for (const a of ['keep', 'move', 'quarantine', 'next']) SL.$('review-' + a).addEventListener('click', () => reviewAct(a));
    SL.$('review-class').addEventListener('change', () => { SL.$('review-to').textContent = SL.$('review-class').value; });
    SL.$('health-folder').addEventListener('change', loadReport);
    document.addEventListener('keydown', onKey);
    try {
      const data = await SL.api('/api/datasets');
      const names = (data.folders || []).filter((f) => !f.error).map((f) => f.name);
      const select = SL.$('health-folder');
      for (const n of names) select.appendChild(el('option', {value: n}, n));
      if (!names.length) {
        status('No folder: start the server with `sightline serve --data-dir FOLDER`.');
        SL.$('health-check').title = 'Start the server with --data-dir FOLDER';
        return;
      }
      if (names.includes(SL.param('folder'))) select.value = SL.param('folder');
      SL.$('health-check').disabled = false;
      await loadReport();
    } catch (err) {
      SL.showError('health-error', 'Cannot list the folders: ' + err.message);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
})();
