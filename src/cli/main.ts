#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { isBreezeError } from '../errors.js';
import { CERTS_USAGE, runCerts } from './certs.js';
import { GENERATE_USAGE, runGenerate } from './generate.js';
import { runServe } from './serve.js';
import { serveUsage } from '../config/serve.js';
import { runValidate, VALIDATE_USAGE } from './validate.js';

const USAGE = `Usage: breeze <command> [flags]

Commands:
  serve      run the admission webhooks (local mode by default: dev certificates, examples/ as config)
  validate   check manifests offline with the webhook's own validators
  generate   print the EnvoyFilters Breeze generates for manifests
  certs      write a development CA and serving certificate

Run 'breeze <command> --help' for a command's flags.`;

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const printErr = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  switch (command) {
    case 'serve':
      if (wantsHelp) return (print(serveUsage()), 0);
      await runServe(rest, process.env, print);
      return -1; // keeps running until a signal
    case 'validate':
      if (wantsHelp) return (print(VALIDATE_USAGE), 0);
      return (await runValidate(rest, print, printErr)).exitCode;
    case 'generate':
      if (wantsHelp) return (print(GENERATE_USAGE), 0);
      return (await runGenerate(rest, (text) => process.stdout.write(text), printErr)).exitCode;
    case 'certs':
      if (wantsHelp) return (print(CERTS_USAGE), 0);
      await runCerts(rest, print);
      return 0;
    case '--version':
    case 'version':
      return (print(version()), 0);
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      return (print(USAGE), command === undefined ? 2 : 0);
    default:
      printErr(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (isBreezeError(err)) {
      printErr(`breeze: ${err.message}`);
      process.exitCode = err.code === 'BAD_FLAG' ? 2 : 1;
    } else {
      printErr(
        `breeze: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      process.exitCode = 1;
    }
  },
);
