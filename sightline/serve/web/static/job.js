/* The Job page (/jobs/{id}): a training job, live, from its Server-Sent Events.
 *
 * The stream replays every event from the start, so a reload rebuilds the whole page; event
 * numbers, epochs and global steps already seen are skipped, so a reconnect never draws a
 * point twice. The `end` event carries the final job. Messages written for the command line
 * ("--pretrained") read in the web's words (words.js). */
'use strict';

(function () {
  const SL = window.SL;
  const el = SL.el;
  const ACTIVE = ['queued', 'running', 'stopping'];
  const LOG_LINES = 50;
  const MAX_STEP_POINTS = 500;
  const POLL_MS = 3000;

  let jobId = null;
  let job = null;
  let source = null;
  let ended = false;
  let lastSeq = -1;
  let lastEpoch = 0;
  let lastStep = 0;
  let epochs = null;
  let runName = null;
  let drawPending = false;
  let validated = null; // whether the run has a validation split (train_begin's val_size); null: not known yet
  const log = [];
  const curves = {loss: [], val_loss: [], accuracy: [], val_accuracy: [], step_loss: []};

  function addLog(text) {
    log.push(SL.webText(text));
    if (log.length > LOG_LINES) log.splice(0, log.length - LOG_LINES);
    const pre = SL.$('job-log');
    pre.textContent = log.join('\n');
    pre.scrollTop = pre.scrollHeight;
  }

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    window.requestAnimationFrame(() => { drawPending = false; draw(); });
  }

  function thin(points) {
    if (points.length <= MAX_STEP_POINTS) return points;
    const every = Math.ceil(points.length / MAX_STEP_POINTS);
    return points.filter((_, i) => i % every === 0 || i === points.length - 1);
  }

  // A run without a validation split has no validation line, and its legend says so (as the
  // Run page's); until training begins, a validation line only once it has points.
  function epochSeries(key) {
    const hasVal = validated === true || curves['val_' + key].length > 0;
    const train = {name: validated === false ? 'train (no validation split)' : 'train', points: curves[key], color: '#2563eb'};
    return hasVal ? [train, {name: 'validation', points: curves['val_' + key], color: '#dc2626'}] : [train];
  }

  function draw() {
    SL.lineChart(SL.$('job-chart-loss'), {title: 'Loss', xLabel: 'epoch', empty: 'No steps yet', series: [
      {name: 'train (steps)', points: thin(curves.step_loss), thin: true, dots: false, color: '#93c5fd'},
      ...epochSeries('loss')]});
    SL.lineChart(SL.$('job-chart-accuracy'), {title: 'Accuracy', xLabel: 'epoch', xInteger: true, empty: 'No epoch finished yet',
      yFormat: (v, d) => SL.pct(v, d ?? 1), yBounds: [0, 1], series: epochSeries('accuracy')});
  }

  function setRun(name) {
    if (!name || name === runName) return;
    runName = name;
    renderWhat();
  }

  function renderWhat() {
    const box = SL.clear(SL.$('job-what'));
    const r = (job && job.request) || {};
    const parts = r.resume ? ['resumes run ' + r.resume]
      : [r.folder ? 'folder ' + r.folder : r.dataset || 'fashion-mnist', r.model || 'default model'];
    if (job && job.resumed_from) parts.push('resumed from job ' + job.resumed_from);
    box.append(parts.join(' · '));
    if (runName) box.append(' · run ', el('a', {href: SL.runUrl(runName), id: 'job-run-name'}, runName));
  }

  function renderState() {
    const state = job ? job.state : 'unknown';
    SL.clear(SL.$('job-state')).appendChild(SL.badge(state));
    const stop = SL.$('job-stop');
    stop.hidden = !ACTIVE.includes(state);
    stop.disabled = state === 'stopping';
    stop.textContent = state === 'stopping' ? 'Stopping…' : 'Stop';
    // The server says whether Resume would be accepted now (an ended or resumed run: no button).
    SL.$('job-resume').hidden = !(job && job.resumable);
  }

  function renderEnd() {
    const box = SL.$('job-result');
    const state = job ? job.state : 'unknown';
    // One sentence, the server's (with the cause), in the colour of the state's badge.
    SL.$('job-result-text').textContent = SL.webText((job && job.outcome) || 'Job ' + state);
    for (const s of ['finished', 'failed', 'interrupted', 'stopped']) box.classList.toggle(s, state === s);
    if (state !== 'finished') SL.setText('job-eta', '—'); // nothing is left to wait for
    const run = (job && job.run) || runName;
    const link = SL.$('job-run-link');
    link.hidden = !run;
    if (run) { link.href = SL.runUrl(run); link.textContent = 'Open run ' + run; }
    box.hidden = false;
  }

  function onEvent(e) {
    let ev;
    try { ev = JSON.parse(e.data); } catch (err) { return; }
    const seq = Number(e.lastEventId);
    if (isFinite(seq) && e.lastEventId !== '') {
      if (seq <= lastSeq) return;
      lastSeq = seq;
    }
    switch (ev.kind) {
      case 'run': setRun(ev.name); addLog((ev.resumed ? 'Resuming run ' : 'Run ') + ev.name); break;
      case 'data': addLog('Data: ' + (ev.description || ev.name || '')); break;
      case 'model': addLog('Model: ' + ev.name + (SL.isNum(ev.parameters) ? ' (' + SL.int(ev.parameters) + ' parameters)' : '')); break;
      case 'train_begin':
        epochs = ev.epochs ?? epochs;
        if (SL.isNum(ev.val_size)) { validated = ev.val_size > 0; scheduleDraw(); }
        addLog('Training: ' + (SL.isNum(ev.epochs) ? SL.plural(ev.epochs, 'epoch') : '? epochs') +
          (ev.steps_per_epoch ? ' of ' + SL.plural(ev.steps_per_epoch, 'step') : ''));
        break;
      case 'step': onStep(ev); break;
      case 'epoch': onEpoch(ev); break;
      case 'message': if (ev.text) addLog(ev.text); break;
      case 'calibration': addLog(ev.skipped ? 'Calibration skipped: ' + ev.skipped
        : 'Calibrated on ' + ev.fitted_on + ' (' + ev.method + '): ECE ' + SL.pct(ev.ece_before, 2) + ' → ' + SL.pct(ev.ece_after, 2)); break;
      case 'evaluation': addLog('Evaluation on the ' + (ev.split || 'test') + ' split: accuracy ' + SL.pct(ev.accuracy, 2) + ', loss ' + SL.num(ev.loss)); break;
      case 'report': addLog('Plots and report written'); break;
      case 'done': addLog('Done: ' + (ev.status || 'finished')); break;
      case 'failed': addLog('Failed: ' + (ev.error || '')); break;
      default: break;
    }
    if (job && job.state === 'queued' && (ev.kind === 'step' || ev.kind === 'train_begin')) {
      job.state = 'running';
      renderState();
    }
  }

  function onStep(ev) {
    if (SL.isNum(ev.global_step) && ev.global_step <= lastStep) return;
    lastStep = ev.global_step || lastStep;
    epochs = ev.epochs ?? epochs;
    SL.setText('job-epoch', ev.epoch + '/' + (epochs ?? '?'));
    SL.setText('job-step', SL.int(ev.step) + '/' + SL.int(ev.steps));
    SL.setText('job-loss', SL.num(ev.loss));
    SL.setText('job-accuracy', SL.pct(ev.accuracy));
    SL.setText('job-speed', SL.int(ev.images_per_sec));
    SL.setText('job-eta', SL.duration(ev.eta_seconds));
    if (SL.isNum(ev.global_step) && SL.isNum(ev.stop_step) && ev.stop_step > 0) {
      SL.$('job-progress').value = Math.min(1, ev.global_step / ev.stop_step);
    }
    if (SL.isNum(ev.loss) && ev.steps) curves.step_loss.push([ev.epoch - 1 + ev.step / ev.steps, ev.loss]);
    scheduleDraw();
  }

  function onEpoch(ev) {
    if (!SL.isNum(ev.epoch) || ev.epoch <= lastEpoch) return;
    lastEpoch = ev.epoch;
    epochs = ev.epochs ?? epochs;
    for (const key of ['loss', 'val_loss', 'accuracy', 'val_accuracy']) {
      if (SL.isNum(ev[key])) curves[key].push([ev.epoch, ev[key]]);
    }
    SL.setText('job-epoch', ev.epoch + '/' + (epochs ?? '?'));
    if (SL.isNum(ev.eta_seconds)) SL.setText('job-eta', SL.duration(ev.eta_seconds));
    let line = 'Epoch ' + ev.epoch + '/' + (epochs ?? '?') + ' - loss ' + SL.num(ev.loss) + ' - accuracy ' + SL.num(ev.accuracy);
    if (SL.isNum(ev.val_loss)) line += ' - val_loss ' + SL.num(ev.val_loss) + ' - val_accuracy ' + SL.num(ev.val_accuracy);
    addLog(line + (ev.best ? '  [best]' : ''));
    scheduleDraw();
  }

  function onEnd(e) {
    ended = true;
    if (source) source.close();
    try { job = JSON.parse(e.data); } catch (err) { /* keep the job we had */ }
    if (job && job.run) setRun(job.run);
    if (job && job.state === 'finished') SL.$('job-progress').value = 1;
    SL.setText('job-connection', '');
    SL.showError('job-error', null); // a reconnect's earlier failure is over: one state shows
    renderState();
    renderEnd();
    draw();
  }

  function connect() {
    const url = '/api/jobs/' + encodeURIComponent(jobId) + '/events' + (lastSeq >= 0 ? '?after=' + lastSeq : '');
    source = new EventSource(url);
    source.onmessage = onEvent; // a property, not an HTML attribute: allowed by the CSP
    source.addEventListener('end', onEnd);
    source.onopen = () => SL.setText('job-connection', '');
    source.onerror = () => {
      if (ended) return;
      if (source.readyState === EventSource.CLOSED) {
        // refused outright (the job is gone, the server restarted): try again a bit later
        SL.setText('job-connection', 'Connection lost; retrying…');
        window.setTimeout(() => { if (!ended) connect(); }, 5000);
      } else {
        SL.setText('job-connection', 'Reconnecting…'); // EventSource retries by itself
      }
    };
  }

  async function poll() {
    if (ended) return;
    try {
      const fresh = await SL.api('/api/jobs/' + encodeURIComponent(jobId));
      if (!ended) {
        job = fresh;
        if (job.run) setRun(job.run);
        renderWhat();
        renderState();
      }
      SL.showError('job-error', null);
    } catch (err) {
      SL.showError('job-error', 'Cannot read the job: ' + err.message);
    }
    if (!ended) window.setTimeout(poll, POLL_MS);
  }

  async function post(action) {
    SL.showError('job-error', null);
    try {
      const answer = await SL.api('/api/jobs/' + encodeURIComponent(jobId) + '/' + action, {method: 'POST'});
      if (action === 'resume') { window.location.href = SL.jobUrl(answer.id); return; }
      job = answer;
      renderState();
    } catch (err) {
      SL.showError('job-error', 'Cannot ' + action + ' the job: ' + SL.webText(err.message));
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    jobId = SL.$('main').dataset.job;
    SL.$('job-stop').addEventListener('click', () => post('stop'));
    SL.$('job-resume').addEventListener('click', () => post('resume'));
    draw();
    poll().then(connect);
  });

})();
