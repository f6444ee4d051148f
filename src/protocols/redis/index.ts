import { BreezeError } from '../../errors.js';
import type { ProtocolGenerator } from '../types.js';

// PLACEHOLDER: replaced by the real generator in this same change.
export const generator: ProtocolGenerator = {
  protocol: 'redis',
  outbound() {
    throw new BreezeError('GENERATION', 'redis generator not written yet');
  },
  inbound() {
    throw new BreezeError('GENERATION', 'redis generator not written yet');
  },
};
