import { lockIcon, refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { requestAPI } from './handler';
import { pyrolabIcon } from './icon';
import { IConfigReply, IServiceEntry, IServicesReply, Status } from './models';

const STATUSES: Status[] = ['online', 'offline', 'unknown'];

/** What the sidebar does when a row's connect button is pressed. */
export type ConnectHandler = (name: string) => void;

/** "3 s ago", "4 min ago", "2 h ago", "5 d ago" for an epoch-seconds or ISO time. */
export function ago(lastSeen: number | string | null, now: number): string {
  if (lastSeen === null || lastSeen === undefined || lastSeen === '') {
    return 'never seen';
  }
  const then =
    typeof lastSeen === 'number' ? lastSeen * 1000 : Date.parse(lastSeen);
  if (isNaN(then)) {
    return 'never seen';
  }
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 60) {
    return `${seconds} s ago`;
  }
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)} min ago`;
  }
  if (seconds < 86400) {
    return `${Math.floor(seconds / 3600)} h ago`;
  }
  return `${Math.floor(seconds / 86400)} d ago`;
}

/** The part of a name before its first dot ("lab" for "lab.laser"); names without one share "". */
export function prefixOf(name: string): string {
  const dot = name.indexOf('.');
  return dot > 0 ? name.slice(0, dot) : '';
}

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/**
 * The "PyroLab" panel of the left area: every service of the nameserver, grouped by
 * name prefix, with its health, lock holder and a connect button; refreshed on a timer
 * while visible and on demand.
 */
export class PyroLabSidebar extends Widget {
  constructor(onConnect: ConnectHandler) {
    super();
    this._onConnect = onConnect;
    this.id = 'pyrolab-sidebar';
    this.addClass('pyrolab-Sidebar');
    this.title.icon = pyrolabIcon;
    this.title.caption = 'PyroLab';

    const header = element('div', 'pyrolab-Sidebar-header');
    header.appendChild(element('h2', 'pyrolab-Sidebar-title', 'PyroLab'));
    this._refreshButton = element('button', 'pyrolab-Sidebar-refresh');
    refreshIcon.element({ container: this._refreshButton });
    this._refreshButton.dataset.action = 'refresh';
    this._refreshButton.title = 'Refresh now';
    this._refreshButton.setAttribute('aria-label', 'Refresh the services');
    this._refreshButton.onclick = () => void this.refresh();
    header.appendChild(this._refreshButton);
    this.node.appendChild(header);

    this._nameserver = element('input', 'pyrolab-Sidebar-nameserver');
    this._nameserver.placeholder = 'nameserver host:port';
    this._nameserver.title = 'The nameserver (Enter to switch)';
    this._nameserver.setAttribute('aria-label', 'Nameserver host:port');
    this._nameserver.onkeydown = event => {
      if (event.key === 'Enter') {
        void this.setNameserver(this._nameserver.value);
      }
    };
    this.node.appendChild(this._nameserver);

    this._filter = element('input', 'pyrolab-Sidebar-filter');
    this._filter.type = 'search';
    this._filter.placeholder = 'Filter services';
    this._filter.setAttribute('aria-label', 'Filter services');
    this._filter.oninput = () => this._render();
    this.node.appendChild(this._filter);

    this._alert = element('div', 'pyrolab-Sidebar-alert');
    this._alert.setAttribute('role', 'alert');
    this._alert.hidden = true;
    this.node.appendChild(this._alert);

    this._list = element('div', 'pyrolab-Sidebar-list');
    this.node.appendChild(this._list);
  }

  /** Seconds between automatic refreshes while the panel is visible. */
  get interval(): number {
    return this._interval;
  }
  set interval(seconds: number) {
    this._interval = Math.max(0.5, seconds);
    this._schedule();
  }

  /** The names the last answer listed. */
  get names(): string[] {
    return this._services.map(s => s.name);
  }

  /** Ask the server for the services now. */
  async refresh(): Promise<void> {
    if (this._busy) {
      return this._busy;
    }
    this._busy = this._fetch().finally(() => {
      this._busy = null;
      this._schedule();
    });
    return this._busy;
  }

  /** Switch the server extension to another nameserver, then refresh. */
  async setNameserver(address: string): Promise<void> {
    try {
      const reply = await requestAPI<IConfigReply>('config', {
        method: 'PUT',
        body: JSON.stringify({ nameserver: address.trim() })
      });
      this._nameserver.value = reply.nameserver;
    } catch (error) {
      this._showAlert(String((error as Error).message ?? error));
      return;
    }
    await this._busy; // an answer already on its way is from the old nameserver
    await this.refresh();
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    void this.refresh();
  }

  private async _fetch(): Promise<void> {
    try {
      const reply = await requestAPI<IServicesReply>('services');
      this._services = reply.services;
      if (document.activeElement !== this._nameserver) {
        this._nameserver.value = reply.nameserver;
      }
      this._alert.hidden = true;
      this._alert.textContent = '';
      this._list.hidden = false;
    } catch (error) {
      this._services = [];
      this._list.hidden = true;
      this._showAlert(String((error as Error).message ?? error));
    }
    this._render();
  }

  private _showAlert(message: string): void {
    this._alert.textContent = message;
    this._alert.hidden = false;
  }

  private _schedule(): void {
    window.clearTimeout(this._timer);
    if (this.isDisposed) {
      return;
    }
    this._timer = window.setTimeout(() => {
      if (this.isVisible) {
        void this.refresh();
      } else {
        this._schedule();
      }
    }, this._interval * 1000);
  }

  private _render(): void {
    const needle = this._filter.value.trim().toLowerCase();
    const shown = this._services.filter(
      s =>
        !needle ||
        s.name.toLowerCase().includes(needle) ||
        (s.class ?? '').toLowerCase().includes(needle) ||
        (s.description ?? '').toLowerCase().includes(needle)
    );
    const groups = new Map<string, IServiceEntry[]>();
    for (const service of [...shown].sort((a, b) =>
      a.name.localeCompare(b.name)
    )) {
      const prefix = prefixOf(service.name);
      groups.set(prefix, [...(groups.get(prefix) ?? []), service]);
    }
    const now = Date.now();
    const nodes: HTMLElement[] = [];
    for (const [prefix, services] of groups) {
      const group = element('section', 'pyrolab-Sidebar-group');
      group.dataset.group = prefix;
      group.appendChild(
        element('h3', 'pyrolab-Sidebar-groupTitle', prefix || '(no prefix)')
      );
      for (const service of services) {
        group.appendChild(this._row(service, now));
      }
      nodes.push(group);
    }
    if (nodes.length === 0 && this._alert.hidden) {
      nodes.push(
        element(
          'p',
          'pyrolab-Sidebar-empty',
          needle
            ? 'No service matches the filter.'
            : 'No service is registered.'
        )
      );
    }
    this._list.replaceChildren(...nodes);
  }

  private _row(service: IServiceEntry, now: number): HTMLElement {
    const status: Status = STATUSES.includes(service.status as Status)
      ? (service.status as Status)
      : 'unknown';
    const row = element('div', 'pyrolab-Sidebar-row');
    row.dataset.service = service.name;
    row.dataset.status = status;
    row.title = service.description || service.name;

    const dot = element('span', `pyrolab-Sidebar-dot pyrolab-mod-${status}`);
    dot.title = status;
    row.appendChild(dot);

    const text = element('div', 'pyrolab-Sidebar-text');
    text.appendChild(element('span', 'pyrolab-Sidebar-name', service.name));
    const details: string[] = [];
    if (service.class) {
      details.push(service.class.split(/[:.]/).pop() ?? service.class);
    }
    if (status !== 'online') {
      details.push(`${status}, last seen ${ago(service.last_seen, now)}`);
    }
    const detail = element(
      'span',
      'pyrolab-Sidebar-detail',
      details.join(' · ')
    );
    if (service.class) {
      detail.title = service.class;
    }
    text.appendChild(detail);
    if (service.locked_by) {
      const lock = element('span', 'pyrolab-Sidebar-lock');
      lock.appendChild(
        lockIcon.element({ tag: 'span', height: '12px', width: '12px' })
      );
      lock.appendChild(document.createTextNode(service.locked_by));
      lock.title = `Locked by ${service.locked_by}`;
      text.appendChild(lock);
    }
    row.appendChild(text);

    const connect = element('button', 'pyrolab-Sidebar-connect', 'Connect');
    connect.dataset.action = 'connect';
    connect.title = `Insert and run %pyrolab connect ${service.name} in the notebook`;
    connect.onclick = () => this._onConnect(service.name);
    row.appendChild(connect);
    return row;
  }

  private _onConnect: ConnectHandler;
  private _refreshButton: HTMLButtonElement;
  private _nameserver: HTMLInputElement;
  private _filter: HTMLInputElement;
  private _alert: HTMLDivElement;
  private _list: HTMLDivElement;
  private _services: IServiceEntry[] = [];
  private _interval = 3;
  private _timer = 0;
  private _busy: Promise<void> | null = null;
}
