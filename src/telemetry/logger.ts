import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Paths censored in every log line. Breeze never logs object bodies on purpose; this is the net
 * under that rule: an object or oldObject (which may carry a RedisService password), credentials
 * one or two levels deep, key material and authorization headers.
 */
export const REDACT_PATHS: readonly string[] = [
  'object',
  'oldObject',
  '*.object',
  '*.oldObject',
  'request.object',
  'request.oldObject',
  'password',
  'token',
  'key',
  'secret',
  '*.password',
  '*.token',
  '*.key',
  '*.secret',
  '*.*.password',
  '*.*.token',
  // A Secret's or an EnvoyFilter's payload (inline Redis passwords), should one ever be logged.
  'data',
  'stringData',
  '*.data',
  '*.stringData',
  'inlineString',
  '*.inlineString',
  '*.*.inlineString',
  'configPatches',
  '*.configPatches',
  '*.*.configPatches',
  '*.tls.key',
  'tls.key',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
];

/** JSON logs (pino) with ISO timestamps, textual levels and secret-bearing paths censored. */
export function createLogger(opts: { level: string; destination?: pino.DestinationStream }): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    redact: { paths: [...REDACT_PATHS], censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}
