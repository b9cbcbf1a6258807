import { FoliolabError } from '@foliolab/ledger';

/**
 * The oracle's one error class: bad input (a scenario it cannot translate, a
 * stale or malformed record) or a host that cannot run it (a missing tool, a
 * failed download, a guest that did not finish). `code` says which.
 */
export class OracleError extends FoliolabError {
  constructor(code: 'EINVAL' | 'ENOTOOLS' | 'EHOST' | 'EGUEST' | 'ESTALE', message: string) {
    super(code, message);
  }
}
