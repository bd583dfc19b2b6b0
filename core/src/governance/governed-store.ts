import { CollectionStore } from '../plugins/data/index.js'
import { ProtectedFields } from './protected-fields.js'
import { keyringFor } from './tenant-keys.js'

/** The plugin host's collection store, encrypting classified personal fields with keys wrapped by `secretKey`'s platform key. */
export function governedStore(secretKey: Buffer, previousSecretKeys: Buffer[] = []): CollectionStore {
  return new CollectionStore(new ProtectedFields(keyringFor(secretKey, previousSecretKeys)))
}
