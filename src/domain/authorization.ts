import type { Clock, Store } from './ports.js';
import type { Authorization, IdTag } from './types.js';

/** One store of identifiers behind Authorize, StartTransaction and the local list we send. */
export class AuthorizationService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async authorize(idTag: string): Promise<Authorization> {
    const tag = await this.store.getIdTag(idTag);
    if (!tag) return { status: 'Invalid' };
    return this.statusOf(tag);
  }

  /** What a station should be told about a known identifier at this moment. */
  statusOf(tag: IdTag): Authorization {
    const info: Authorization = { status: tag.status };
    if (tag.expiryDate) info.expiryDate = tag.expiryDate;
    if (tag.parentIdTag) info.parentIdTag = tag.parentIdTag;
    if (tag.status === 'Accepted' && tag.expiryDate && new Date(tag.expiryDate).getTime() <= this.clock.now().getTime()) info.status = 'Expired';
    return info;
  }
}
