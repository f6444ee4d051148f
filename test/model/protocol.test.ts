import t from 'tap';
import { editDistance, likelyMisspeltProtocol, protocolFromPortName } from '../../src/model/protocol.js';

t.test('protocol is the second dash token, any case (Aeraki parity)', async (t) => {
  t.equal(protocolFromPortName('tcp-dubbo'), 'dubbo');
  t.equal(protocolFromPortName('tcp-Dubbo'), 'dubbo');
  t.equal(protocolFromPortName('tcp-Dubbo-28001'), 'dubbo');
  t.equal(protocolFromPortName('TCP-redis'), 'redis', 'the first token is not checked');
  t.equal(protocolFromPortName('Dubbo'), undefined);
  t.equal(protocolFromPortName('tcp'), undefined);
  t.equal(protocolFromPortName('tcp-metaprotocol'), undefined, 'no panic, not supported');
  t.equal(protocolFromPortName('tcp-zookeeper'), 'zookeeper');
  t.equal(protocolFromPortName('tcp-kafka-broker'), 'kafka');
  t.equal(protocolFromPortName('tcp-thrift'), 'thrift');
  t.equal(protocolFromPortName(''), undefined);
});

t.test('misspellings are caught without flagging real names', async (t) => {
  t.equal(likelyMisspeltProtocol('tcp-dubo'), 'dubbo');
  t.equal(likelyMisspeltProtocol('tcp-thirft'), 'thrift');
  t.equal(likelyMisspeltProtocol('tcp-zookeper'), 'zookeeper');
  t.equal(likelyMisspeltProtocol('tcp-zookeepr'), 'zookeeper');
  t.equal(likelyMisspeltProtocol('tcp-reddis'), 'redis');
  t.equal(likelyMisspeltProtocol('tcp-kafak'), 'kafka');
  for (const ok of [
    'tcp-dubbo',
    'tcp-redis',
    'http-web',
    'tcp-follower',
    'tcp-election',
    'tcp',
    'grpc',
    'tcp-mongo',
    'tcp-mysql',
    'tcp-custom',
    'tcp-db',
  ]) {
    t.equal(likelyMisspeltProtocol(ok), undefined, ok);
  }
});

t.test('edit distance', async (t) => {
  t.equal(editDistance('', ''), 0);
  t.equal(editDistance('abc', ''), 3);
  t.equal(editDistance('thirft', 'thrift'), 1, 'adjacent swap counts once');
  t.equal(editDistance('kitten', 'sitting'), 3);
});
