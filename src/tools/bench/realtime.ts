import { spawnSync } from 'node:child_process';

/**
 * Runs a server under SCHED_FIFO priority 1 (util-linux chrt, which execs it: same pid).
 * Every thread it starts inherits the policy, so a thread that becomes runnable takes a
 * CPU from any ordinary thread at once instead of waiting for the running one's time
 * slice. The lag rows run once more this way to show how much of their tail is the wait
 * for a CPU on a small machine. The kernel's real-time throttling (95% of each second by
 * default) keeps a runaway thread from taking the machine.
 */
export const REALTIME_LAUNCHER = ['chrt', '-f', '1'];

/** Whether REALTIME_LAUNCHER works here: chrt installed and the right to use it (root or CAP_SYS_NICE). */
export function realtimeAvailable(): boolean {
  const r = spawnSync(REALTIME_LAUNCHER[0], [...REALTIME_LAUNCHER.slice(1), 'true'], { stdio: 'ignore' });
  return r.status === 0;
}
