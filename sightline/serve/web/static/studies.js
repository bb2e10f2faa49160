/* The Sweeps pages: /studies (every study beside the runs: GET /api/studies) and
 * /studies/NAME (one study: GET /api/studies/NAME, its trials linked to their runs, its
 * figures). A study still running is read again every few seconds. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const REFRESH_MS = 5000;
  const studyUrl = (name) => '/studies/' + encodeURIComponent(name);
  const value = (v) => (SL.isNum(v) ? SL.pct(v, 2) : '–');
  const shortValue = (v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(3)) : v);
  const params = (p) => Object.entries(p || {}).map(([k, v]) => k + '=' + shortValue(v)).join(', ');

  async function listStudies() {
    let studies;
    try {
      studies = (await SL.api('/api/studies')).studies || [];
      SL.showError('studies-error', null);
    } catch (err) {
      SL.showError('studies-error', 'Cannot list the sweeps: ' + err.message);
      return;
    }
    SL.$('studies-empty').hidden = studies.length > 0;
    SL.$('studies-card').hidden = studies.length === 0;
    SL.sortableTable(SL.$('studies-table'), [
      {key: 'name', label: 'Study', class: 'wrap', cell: (s) => el('a', {href: studyUrl(s.name)}, s.name)},
      {key: 'trials', label: 'Trials'},
      {key: 'best_value', label: 'Best validation accuracy', cell: (s) => value(s.best_value)},
      {key: 'best_trial', label: 'Best trial'},
      {key: 'started', label: 'Started', class: 'nowrap', value: (s) => SL.timestamp(s.started), cell: (s) => SL.date(s.started)},
    ]).setRows(studies);
  }

  let table = null;

  async function showStudy(name) {
    let study;
    try {
      study = await SL.api('/api/studies/' + encodeURIComponent(name));
      SL.showError('study-error', null);
    } catch (err) {
      SL.showError('study-error', 'Cannot read the sweep: ' + err.message);
      return;
    }
    const trials = study.trials || [];
    const target = SL.isNum(study.target_trials) ? ' of ' + study.target_trials : '';
    SL.setText('study-trials', trials.length + target);
    SL.setText('study-best', study.best ? value(study.best.value) : '–');
    SL.setText('study-best-trial', study.best ? String(study.best.number) : '–');
    SL.setText('study-model', study.model || '–');
    SL.setText('study-data', study.dataset || '–');
    SL.setText('study-best-params', study.best ? 'Best options: ' + params(study.best.params) : 'No trial has finished yet.');
    SL.setText('study-retrain', 'sightline tune --retrain ' + name);
    const figures = SL.clear(SL.$('study-figure-list'));
    for (const f of study.figures || []) {
      const src = '/api/studies/' + encodeURIComponent(name) + '/figures/' + encodeURIComponent(f);
      figures.appendChild(el('img', {src, alt: f === 'history.png' ? 'Optimisation history' : 'Parameter importance', loading: 'lazy'}));
    }
    SL.$('study-figures').hidden = !(study.figures || []).length;
    const names = [...new Set(trials.flatMap((t) => Object.keys(t.params || {})))].sort();
    const columns = [
      {key: 'number', label: 'Trial'},
      {key: 'state', label: 'State', cell: (t) => SL.badge(String(t.state).toLowerCase())},
      {key: 'value', label: 'Validation accuracy', cell: (t) => value(t.value)},
      {key: 'seconds', label: 'Time', cell: (t) => (SL.isNum(t.seconds) ? SL.duration(t.seconds) : '–')},
      ...names.map((n) => ({key: 'p:' + n, label: n, value: (t) => (t.params || {})[n], cell: (t) => String(shortValue((t.params || {})[n]) ?? '–')})),
      {key: 'run', label: 'Run', class: 'wrap', cell: (t) => (t.run ? el('a', {href: SL.runUrl(t.run)}, t.run) : '–')},
    ];
    table = SL.sortableTable(SL.$('study-table'), columns, {sortKey: 'number', rowAttrs: (t) => ({dataset: {trial: String(t.number)}})});
    table.setRows(trials);
    if (trials.some((t) => t.state === 'RUNNING')) window.setTimeout(() => showStudy(name), REFRESH_MS);
  }

  document.addEventListener('DOMContentLoaded', () => {
    const name = SL.$('main').dataset.study;
    if (name) showStudy(name);
    else listStudies();
  });
})();
