import type { HandledKind } from '../../model/kinds.js';
import { withAmbientWarnings } from './ambient.js';
import { validateDestinationRule } from './destinationrule.js';
import { validateRedisDestination } from './redisdestination.js';
import { validateRedisService } from './redisservice.js';
import { validateServiceEntry } from './serviceentry.js';
import type { Validator } from './types.js';
import { validateVirtualService } from './virtualservice.js';

export type { ValidationContext, Validator } from './types.js';

export const VALIDATORS: Readonly<Record<HandledKind, Validator>> = withAmbientWarnings({
  ServiceEntry: validateServiceEntry,
  VirtualService: validateVirtualService,
  DestinationRule: validateDestinationRule,
  RedisService: validateRedisService,
  RedisDestination: validateRedisDestination,
});
