// The lab server's /batchhub/ handlers (batch_service/lab_queue.py): they call the batch
// service with the server's own token, so the page never holds one.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export async function getJSON(path) {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'batchhub', path);
  let response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (e) {
    throw new Error('JupyterLab cannot reach its server');
  }
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.message ? body.message : response.statusText;
    throw new Error(message || `error ${response.status}`);
  }
  return body;
}

// 5400 -> "1.5 hours", 600 -> "10 minutes", 45 -> "45 seconds"
export function duration(seconds) {
  const plural = (n, unit) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (seconds >= 3600 && seconds % 360 === 0) {
    return plural(seconds / 3600, 'hour');
  }
  if (seconds >= 60 && seconds % 60 === 0) {
    return plural(seconds / 60, 'minute');
  }
  return plural(seconds, 'second');
}
