import { BreezeError } from '../../errors.js';
import type { ProtocolGenerator } from '../types.js';

// PLACEHOLDER: replaced by the real generator in this same change.
export const generator: ProtocolGenerator = {
  protocol: 'kafka',
  outbound() {
    throw new BreezeError('GENERATION', 'kafka generator not written yet');
  },
  inbound() {
    throw new BreezeError('GENERATION', 'kafka generator not written yet');
  },
};
