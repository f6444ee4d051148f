import type { Protocol } from '../model/protocol.js';
import { generator as dubbo } from './dubbo/index.js';
import { generator as kafka } from './kafka/index.js';
import { generator as redis } from './redis/index.js';
import { generator as thrift } from './thrift/index.js';
import type { ProtocolGenerator } from './types.js';
import { generator as zookeeper } from './zookeeper/index.js';

/** Protocol → generator. Adding a protocol is one folder and one line here. */
export const GENERATORS: Readonly<Record<Protocol, ProtocolGenerator>> = {
  dubbo,
  thrift,
  kafka,
  zookeeper,
  redis,
};
