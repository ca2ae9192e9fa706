// batchhub in JupyterLab: Create Job's time limit, and the Batch queue panel.
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Scheduler } from '@jupyterlab/scheduler';
import { AdvancedOptions } from './options';
import { QueuePanel } from './queue';

const queueIcon = new LabIcon({
  name: 'batchhub-lab:queue',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">' +
    '<g class="jp-icon3" fill="#616161"><rect x="3" y="4" width="18" height="4" rx="1"/>' +
    '<rect x="3" y="10" width="13" height="4" rx="1"/><rect x="3" y="16" width="8" height="4" rx="1"/></g></svg>'
});

// Replaces jupyter-scheduler's own provider (disabled in batch_service/lab/etc/labconfig).
const advancedOptions = {
  id: 'batchhub-lab:advanced-options',
  autoStart: true,
  provides: Scheduler.IAdvancedOptions,
  activate: () => AdvancedOptions
};

const queue = {
  id: 'batchhub-lab:queue',
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app, palette) => {
    const panel = new QueuePanel();
    panel.title.icon = queueIcon;
    app.shell.add(panel, 'right', { rank: 650 });
    const command = 'batchhub:open-queue';
    app.commands.addCommand(command, {
      label: 'Batch queue',
      caption: 'Your batch jobs: place in line, progress, live kernels',
      execute: () => app.shell.activateById(panel.id)
    });
    if (palette) {
      palette.addItem({ command, category: 'Batch' });
    }
  }
};

export default [advancedOptions, queue];
