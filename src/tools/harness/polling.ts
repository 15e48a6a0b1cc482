/**
 * Waiting without fixed sleeps: whoever waits for a process or for replication polls a
 * condition until a deadline, so a fast machine is never slowed down and a slow one gets
 * the whole deadline.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls cond until it returns a truthy value or the deadline passes. An error thrown by
 * cond counts as "not yet" (a server that is still starting refuses calls); the last one
 * is quoted if the deadline passes.
 */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 30_000, intervalMs = 25): Promise<NonNullable<Awaited<T>>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<Awaited<T>>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await sleep(intervalMs);
  }
}
