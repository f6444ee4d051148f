import { BreezeError } from '../../errors.js';
import type { ProtocolGenerator } from '../types.js';

// PLACEHOLDER: replaced by the real generator in this same change.
export const generator: ProtocolGenerator = {
  protocol: 'dubbo',
  outbound() {
    throw new BreezeError('GENERATION', 'dubbo generator not written yet');
  },
  inbound() {
    throw new BreezeError('GENERATION', 'dubbo generator not written yet');
  },
};
