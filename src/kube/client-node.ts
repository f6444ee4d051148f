/**
 * @kubernetes/client-node, imported when first needed: its API models hold about 27 MiB of heap,
 * which a process that never talks to the API server (local mode) should not carry (a larger
 * heap makes every full garbage collection longer, on the request path too).
 */
export function loadClientNode(): Promise<typeof import('@kubernetes/client-node')> {
  return import('@kubernetes/client-node');
}
