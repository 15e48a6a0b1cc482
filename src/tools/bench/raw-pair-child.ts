// One process of raw-pair.ts: opens a store, waits for 'go', writes, reports, exits.
import fs from 'node:fs';
import { openStore } from '../../storage/level-store.js';
import type { RawPairMessage } from './raw-pair.js';
import { writeRaw } from './raw-level.js';
import { Workload } from './workload.js';

const [mode, dir, valueBytes, entries, batch] = process.argv.slice(2);
if (mode !== 'segment' && mode !== 'once') throw new Error(`raw-pair-child: unknown mode ${mode}`);
const send = (m: RawPairMessage) => new Promise<void>((resolve) => process.send!(m, () => resolve()));

fs.rmSync(dir, { recursive: true, force: true });
fs.rmSync(`${dir}-log`, { recursive: true, force: true });
const db = await openStore(dir, { create: true });
const w = new Workload(Number(valueBytes));
const go = new Promise<void>((resolve) => process.once('message', () => resolve()));
await send({ ready: true });
await go;
const cpu = process.cpuUsage();
const started = performance.now();
await writeRaw(db, w, mode, Number(entries), Number(batch), `${dir}-log`);
const seconds = (performance.now() - started) / 1000;
const used = process.cpuUsage(cpu);
await send({ perSecond: Number(entries) / seconds, cpuMicrosPerEntry: (used.user + used.system) / Number(entries) });
await db.close();
fs.rmSync(dir, { recursive: true, force: true });
fs.rmSync(`${dir}-log`, { recursive: true, force: true });
process.disconnect();
