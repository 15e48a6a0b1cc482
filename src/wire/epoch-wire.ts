import type { EpochStart } from './generated/levelreplicator/v1/EpochStart.js';
import { seqToWire } from './seq.js';

/** One epoch's start as code holds it (storage's EpochStart has this shape). */
export interface EpochStartValue {
  epoch: number;
  firstSeq: bigint;
}

/** An epoch history from the wire; proto3's empty list means the default: epoch 1 from seq 1. */
export function historyFromWire(epochs: readonly { epoch: number; firstSeq: string | number | bigint }[] | null | undefined): EpochStartValue[] {
  if (!epochs || epochs.length === 0) return [{ epoch: 1, firstSeq: 1n }];
  return epochs.map((e) => ({ epoch: e.epoch, firstSeq: BigInt(e.firstSeq) }));
}

export function historyToWire(h: readonly EpochStartValue[]): EpochStart[] {
  return h.map((e) => ({ epoch: e.epoch, firstSeq: seqToWire(e.firstSeq) }));
}

/** `1@1 2@5301`: epoch@firstSeq, for logs and status lines. */
export function formatEpochs(h: readonly EpochStartValue[]): string {
  return h.map((e) => `${e.epoch}@${e.firstSeq}`).join(' ');
}
