// The "Batch queue" side panel: the user's batchhub jobs with their state, place in line and
// reason, progress (cells done of all), and "Open live kernel" for a run that kept its kernel.
// jupyter-scheduler's Jobs list has no column extension point, so this panel sits beside it.
import { PageConfig } from '@jupyterlab/coreutils';
import { Widget } from '@lumino/widgets';
import { duration, getJSON } from './api';

const POLL_MS = 2500;
const STATES = {
  queued: 'Queued',
  starting: 'Starting',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  timed_out: 'Timed out',
  cancelled: 'Cancelled'
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

// The Batch page lives beside the hub: /hub/ -> /services/batch/
function batchPageUrl() {
  const hubPrefix = PageConfig.getOption('hubPrefix');
  if (!hubPrefix) {
    return '';
  }
  return hubPrefix.replace(/hub\/?$/, '') + 'services/batch/';
}

export class QueuePanel extends Widget {
  constructor() {
    super();
    this.id = 'batchhub-queue';
    this.addClass('bh-Queue');
    this.title.caption = 'Batch queue';
    const header = el('div', 'bh-Queue-header');
    header.appendChild(el('h2', 'bh-Queue-title', 'Batch queue'));
    const page = batchPageUrl();
    if (page) {
      const link = el('a', 'bh-Queue-link', 'Batch page');
      link.href = page;
      link.target = '_blank';
      link.rel = 'noopener';
      header.appendChild(link);
    }
    this.node.appendChild(header);
    this._status = el('div', 'bh-Queue-status');
    this._status.setAttribute('role', 'status');
    this._status.textContent = 'Loading your batch jobs…';
    this._list = el('ul', 'bh-Queue-list');
    this.node.appendChild(this._status);
    this.node.appendChild(this._list);
    this._timer = null;
    this._visibility = () => this._schedule(0);
    document.addEventListener('visibilitychange', this._visibility);
  }

  dispose() {
    document.removeEventListener('visibilitychange', this._visibility);
    clearTimeout(this._timer);
    super.dispose();
  }

  onAfterShow() {
    this._schedule(0);
  }

  onBeforeHide() {
    clearTimeout(this._timer);
    this._timer = null;
  }

  // Poll only while the panel is shown and the browser tab is in front.
  _schedule(delay) {
    clearTimeout(this._timer);
    this._timer = null;
    if (this.isDisposed || !this.isVisible || document.visibilityState === 'hidden') {
      return;
    }
    this._timer = setTimeout(() => void this._refresh(), delay);
  }

  async _refresh() {
    try {
      const body = await getJSON('queue');
      this._render(body.jobs, body.total);
      this._status.classList.remove('bh-Queue-error');
    } catch (e) {
      this._status.textContent = `Cannot read your batch jobs: ${e.message}`;
      this._status.classList.add('bh-Queue-error');
    }
    this._schedule(POLL_MS);
  }

  _render(jobs, total) {
    if (jobs.length === 0) {
      this._status.textContent =
        'No batch jobs yet. Right-click a notebook and choose Create Job to queue one.';
    } else if (total > jobs.length) {
      this._status.textContent = `Your newest ${jobs.length} of ${total} batch jobs.`;
    } else {
      this._status.textContent = `${total} batch job${total === 1 ? '' : 's'}.`;
    }
    this._list.replaceChildren(...jobs.map(job => this._row(job)));
  }

  _row(job) {
    const item = el('li', `bh-Job bh-Job-${job.state}`);
    item.dataset.jobId = job.id;
    const head = el('div', 'bh-Job-head');
    head.appendChild(el('span', 'bh-Job-name', job.input_name));
    head.appendChild(el('span', `bh-Job-state bh-Job-state-${job.state}`, STATES[job.state] || job.state));
    item.appendChild(head);
    let meta = `${job.profile} · ${job.id}`;
    if (job.time_limit) {
      meta += ` · limit ${duration(job.time_limit)}`;
    }
    item.appendChild(el('div', 'bh-Job-meta', meta));
    if (job.state === 'queued' || job.state === 'starting') {
      const where = job.position ? `Number ${job.position} in line` : 'Waiting';
      item.appendChild(el('div', 'bh-Job-wait', where));
      if (job.reason) {
        item.appendChild(el('div', 'bh-Job-reason', job.reason));
      }
    }
    const progress = job.progress || {};
    if (progress.total && ['running', 'succeeded', 'failed', 'timed_out', 'cancelled'].includes(job.state)) {
      const row = el('div', 'bh-Job-progress');
      const bar = el('progress');
      bar.max = progress.total;
      bar.value = Math.min(progress.index || 0, progress.total);
      const words = `${progress.index || 0} of ${progress.total} cells done`;
      bar.setAttribute('aria-label', words);
      row.appendChild(bar);
      row.appendChild(el('span', 'bh-Job-cells', words));
      item.appendChild(row);
    }
    if (['failed', 'timed_out', 'cancelled'].includes(job.state) && job.reason) {
      item.appendChild(el('div', 'bh-Job-reason', job.reason));
    }
    if (job.live_kernel_url) {
      const open = el('button', 'jp-Button jp-mod-styled jp-mod-accept bh-Job-live', 'Open live kernel');
      open.title = 'The executed notebook on the kernel the run used, in a new browser tab';
      open.addEventListener('click', () => {
        window.open(job.live_kernel_url, '_blank', 'noopener');
      });
      item.appendChild(open);
    }
    return item;
  }
}
