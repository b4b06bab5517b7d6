import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  Notification
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { insertConnect } from './connect';
import { requestAPI } from './handler';
import { IConfigReply } from './models';
import { PyroLabSidebar } from './sidebar';

/** The command ids, one place. */
export namespace CommandIDs {
  export const insertConnect = 'pyrolab:insert-connect';
  export const refresh = 'pyrolab:refresh';
  export const openSidebar = 'pyrolab:open-sidebar';
  export const setNameserver = 'pyrolab:set-nameserver';
}

const PLUGIN_ID = 'pyrolab-jupyter:plugin';
const CATEGORY = 'PyroLab';

/**
 * The PyroLab sidebar: the lab's services in the left area, and commands to
 * refresh it, switch nameserver and connect a notebook to a service.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The whole lab at a glance; one click to a panel.',
  autoStart: true,
  requires: [ILabShell, INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    shell: ILabShell,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settings: ISettingRegistry | null
  ) => {
    const sidebar = new PyroLabSidebar(name =>
      app.commands.execute(CommandIDs.insertConnect, { name })
    );
    shell.add(sidebar, 'left', { rank: 200 });
    restorer?.add(sidebar, sidebar.id);
    addCommands(app, shell, sidebar, notebooks);
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: CATEGORY });
    }
    settings
      ?.load(PLUGIN_ID)
      .then(loaded => {
        const apply = () =>
          (sidebar.interval = loaded.get('refreshInterval')
            .composite as number);
        apply();
        loaded.changed.connect(apply);
      })
      .catch(reason => console.error('PyroLab: cannot load settings', reason));
    Promise.all([app.restored, requestAPI<IConfigReply>('config')])
      .then(([, config]) => {
        if (config.open_sidebar) {
          shell.activateById(sidebar.id);
        }
      })
      .catch(reason => console.warn('PyroLab: no server extension?', reason));
  }
};

function addCommands(
  app: JupyterFrontEnd,
  shell: ILabShell,
  sidebar: PyroLabSidebar,
  notebooks: INotebookTracker
): void {
  app.commands.addCommand(CommandIDs.insertConnect, {
    label: 'PyroLab: Connect the Notebook to a Service',
    caption: 'Insert and run %pyrolab connect NAME in the active notebook',
    execute: async args => {
      let name = args.name as string | undefined;
      if (!name) {
        await sidebar.refresh();
        const choice = await InputDialog.getItem({
          title: 'Connect to which service?',
          items: sidebar.names
        });
        name = choice.button.accept ? (choice.value ?? undefined) : undefined;
      }
      if (!name) {
        return;
      }
      try {
        await insertConnect(notebooks, name);
      } catch (error) {
        Notification.error(String((error as Error).message ?? error), {
          autoClose: 8000
        });
      }
    }
  });
  app.commands.addCommand(CommandIDs.refresh, {
    label: 'PyroLab: Refresh the Services',
    execute: () => sidebar.refresh()
  });
  app.commands.addCommand(CommandIDs.openSidebar, {
    label: 'PyroLab: Show the Sidebar',
    execute: () => shell.activateById(sidebar.id)
  });
  app.commands.addCommand(CommandIDs.setNameserver, {
    label: 'PyroLab: Use Another Nameserver…',
    execute: async () => {
      const choice = await InputDialog.getText({
        title: 'Nameserver (host:port)',
        placeholder: '127.0.0.1:9090'
      });
      if (choice.button.accept && choice.value) {
        await sidebar.setNameserver(choice.value);
        shell.activateById(sidebar.id);
      }
    }
  });
}

export default plugin;
