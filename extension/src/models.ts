/**
 * The JSON the server extension answers, key for key as the Python side builds it
 * (`pyrolab_jupyter.core.naming.entry`, `pyrolab_jupyter.server.handlers`).
 */

/** A service's health as the nameserver last saw it. */
export type Status = 'online' | 'offline' | 'unknown';

/** One row of `GET /pyrolab/api/services` (and of `Lab.services()`). */
export interface IServiceEntry {
  name: string;
  uri: string;
  status: Status | string;
  /** Epoch seconds or ISO text; null when never checked. */
  last_seen: number | string | null;
  class: string | null;
  description: string;
  locked_by: string | null;
}

/** `GET /pyrolab/api/services`. */
export interface IServicesReply {
  nameserver: string;
  services: IServiceEntry[];
}

/** `GET/PUT /pyrolab/api/config`. */
export interface IConfigReply {
  nameserver: string;
  open_sidebar: boolean;
}
