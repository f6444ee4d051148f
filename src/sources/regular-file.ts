import { constants, type BigIntStats } from 'node:fs';
import { open } from 'node:fs/promises';

/** What reading a file with readRegularFile found. */
export type RegularFileRead =
  | { readonly ok: true; readonly text: string; readonly stats: BigIntStats }
  | { readonly ok: false; readonly reason: 'not-regular'; readonly stats: BigIntStats }
  /** `grew`: under the cap by fstat, but more than the cap was read (it grew meanwhile). */
  | { readonly ok: false; readonly reason: 'too-large'; readonly stats: BigIntStats; readonly grew: boolean };

/**
 * Reads a regular file of at most `max` bytes as UTF-8, without ever blocking on it: opened
 * O_NONBLOCK (a FIFO or a device in place of the file opens at once instead of holding a libuv
 * thread forever), checked with fstat on the open file, and read at most `readTo(size)` + 1 bytes
 * so growth past the cap is noticed. Open and read errors are thrown (with their errno code).
 */
export async function readRegularFile(
  path: string,
  max: number,
  readTo: (size: number) => number = () => max,
): Promise<RegularFileRead> {
  const handle = await open(path, constants.O_RDONLY | ((constants.O_NONBLOCK as number | undefined) ?? 0));
  try {
    const stats = await handle.stat({ bigint: true });
    if (!stats.isFile()) return { ok: false, reason: 'not-regular', stats };
    if (stats.size > BigInt(max)) return { ok: false, reason: 'too-large', stats, grew: false };
    const buffer = Buffer.allocUnsafe(Math.min(readTo(Number(stats.size)), max) + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > max) return { ok: false, reason: 'too-large', stats, grew: true };
    return { ok: true, text: buffer.toString('utf8', 0, length), stats };
  } finally {
    await handle.close().catch(() => undefined);
  }
}
