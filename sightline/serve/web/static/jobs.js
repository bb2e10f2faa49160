/* The Jobs page (/jobs): the training jobs, newest first; refreshed while one is active. */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const REFRESH_MS = 3000;
  const ACTIVE = ['queued', 'running', 'stopping'];
  let table = null;

  function what(job) {
    const r = job.request || {};
    if (r.resume) return ['resume ' + r.resume, ''];
    return [r.folder ? 'folder ' + r.folder : r.dataset || 'fashion-mnist', r.model || (r.pretrained ? 'pretrained' : 'default')];
  }

  function progress(job) {
    const p = job.progress || {};
    if (!SL.isNum(p.epoch)) return job.state === 'queued' ? 'waiting' : '–';
    const fraction = SL.isNum(p.global_step) && SL.isNum(p.stop_step) && p.stop_step > 0 ? p.global_step / p.stop_step : null;
    const text = 'epoch ' + p.epoch + '/' + (p.epochs ?? '?');
    return fraction === null ? text : el('div', {class: 'conf-cell'}, SL.bar(fraction), text);
  }

  function result(job) {
    const r = job.result || {};
    if (SL.isNum(r.test_accuracy)) return 'test ' + SL.pct(r.test_accuracy, 2);
    if (!job.error) return '–';
    const error = SL.webText(job.error); // written for the command line: the form's words here
    return el('span', {class: 'error-text', title: error}, error.length > 60 ? error.slice(0, 60) + '…' : error);
  }

  // A job is named by what it trains (its run, once it has one); the id stays for scripts.
  function name(job) {
    return job.run || (job.request || {}).name || what(job).filter(Boolean).join(' · ');
  }

  async function clear(ids) {
    SL.showError('jobs-error', null);
    for (const id of ids) {
      try {
        await SL.api('/api/jobs/' + encodeURIComponent(id), {method: 'DELETE'});
      } catch (err) {
        SL.showError('jobs-error', 'Cannot clear job ' + id + ': ' + err.message);
        break;
      }
    }
    load();
  }

  const COLUMNS = [
    {key: 'name', label: 'Job', class: 'wrap', value: name,
      cell: (j) => el('div', null, el('a', {href: SL.jobUrl(j.id)}, name(j)), el('div', {class: 'muted small'}, j.id))},
    {key: 'state', label: 'State', cell: (j) => SL.badge(j.state)},
    {key: 'dataset', label: 'Data', class: 'wrap', value: (j) => what(j)[0], cell: (j) => what(j)[0]},
    {key: 'model', label: 'Model', value: (j) => what(j)[1], cell: (j) => what(j)[1] || '–'},
    {key: 'run', label: 'Run', class: 'wrap', cell: (j) => (j.run ? el('a', {href: SL.runUrl(j.run)}, j.run) : '–')},
    {key: 'created', label: 'Created', class: 'nowrap', value: (j) => SL.timestamp(j.created), cell: (j) => SL.date(j.created)},
    {key: 'progress', label: 'Progress', sortable: false, cell: progress},
    {key: 'result', label: 'Result', sortable: false, class: 'wrap', cell: result},
    {key: 'clear', label: '', sortable: false, cell: (j) => (ACTIVE.includes(j.state) ? ''
      : el('button', {type: 'button', class: 'secondary small', title: 'Forget this job and its log (its run stays)',
        on: {click: () => clear([j.id])}}, 'Clear'))},
  ];
  let shown = [];

  async function load() {
    let jobs;
    try {
      jobs = (await SL.api('/api/jobs')).jobs || [];
      SL.showError('jobs-error', null);
    } catch (err) {
      SL.showError('jobs-error', 'Cannot list the jobs: ' + err.message);
      window.setTimeout(load, REFRESH_MS * 3);
      return;
    }
    SL.$('jobs-empty').hidden = jobs.length > 0;
    SL.$('jobs-card').hidden = jobs.length === 0;
    shown = jobs;
    const ended = jobs.filter((j) => !ACTIVE.includes(j.state));
    const button = SL.$('jobs-clear-ended');
    button.disabled = !ended.length;
    button.title = ended.length ? '' : 'No job has ended yet: only ended jobs can be cleared';
    table.setRows(jobs);
    if (jobs.some((j) => ACTIVE.includes(j.state))) window.setTimeout(load, REFRESH_MS);
  }

  document.addEventListener('DOMContentLoaded', () => {
    table = SL.sortableTable(SL.$('jobs-table'), COLUMNS, {rowAttrs: (j) => ({dataset: {job: j.id}})});
    SL.$('jobs-clear-ended').addEventListener('click', () => clear(shown.filter((j) => !ACTIVE.includes(j.state)).map((j) => j.id)));
    load();
  });
})();
