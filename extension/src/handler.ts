import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * The one way the frontend talks to the server extension (`/pyrolab/api/...`).
 *
 * Throws an `Error` carrying the server's `{"message": ...}` when the answer is not OK,
 * so callers can show it as it is.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'pyrolab', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  try {
    data = text.length > 0 ? JSON.parse(text) : {};
  } catch {
    // not JSON: keep the text for the message below
  }
  if (response.status === 404) {
    throw new Error(
      'The PyroLab server extension is not running in this Jupyter server: ' +
        'enable it with `jupyter server extension enable pyrolab_jupyter.server` and restart JupyterLab.'
    );
  }
  if (!response.ok) {
    const message =
      typeof data === 'object' && data && data.message
        ? data.message
        : `the PyroLab server extension answered ${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return data as T;
}
