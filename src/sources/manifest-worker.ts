/**
 * Worker thread entry of the file source: parses manifest text off the event loop, so a large or
 * hostile file costs the worker CPU, never /healthz or the webhook. One request at a time.
 */
import { parentPort } from 'node:worker_threads';
import { parseManifestText } from './manifest-parse.js';

export interface ParseRequest {
  readonly id: number;
  readonly text: string;
}

parentPort?.on('message', (request: ParseRequest) => {
  const result = parseManifestText(request.text);
  parentPort?.postMessage({ id: request.id, objects: result.objects, errors: result.errors });
});
