import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

/** Names the sidebar will put in a cell: no spaces, quotes or line breaks can ride along. */
const SAFE_NAME = /^[A-Za-z0-9_.:@/-]+$/;

const LOAD_EXT = /^\s*%load_ext\s+pyrolab_jupyter\b/m;

/** The code to run: `%pyrolab connect NAME`, after `%load_ext` when no cell loads it yet. */
export function connectCode(name: string, sources: string[]): string {
  if (!SAFE_NAME.test(name)) {
    throw new Error(
      `The service name ${JSON.stringify(name)} has characters a magic cannot take; ` +
        'connect to it from Python: Lab().connect(...)'
    );
  }
  const loaded = sources.some(source => LOAD_EXT.test(source));
  const magic = `%pyrolab connect ${name}`;
  return loaded ? magic : `%load_ext pyrolab_jupyter\n${magic}`;
}

/**
 * Insert `%pyrolab connect NAME` below the active cell of the current notebook
 * (or into the active cell when it is an empty code cell), and run it.
 */
export async function insertConnect(
  tracker: INotebookTracker,
  name: string
): Promise<void> {
  const panel = tracker.currentWidget;
  if (!panel) {
    throw new Error(
      `Open a notebook first: the sidebar inserts %pyrolab connect ${name} into it.`
    );
  }
  await panel.context.ready;
  const notebook = panel.content;
  const sources = panel.content.widgets.map(cell =>
    cell.model.sharedModel.getSource()
  );
  const code = connectCode(name, sources);
  const active = notebook.activeCell;
  const reuse =
    active !== null &&
    active !== undefined &&
    active.model.type === 'code' &&
    active.model.sharedModel.getSource().trim() === '';
  if (!reuse) {
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
  await NotebookActions.run(notebook, panel.sessionContext);
}
