/**
 * One run's events folded into a `RunSnapshot` by the engine's own fold
 * (`foldRunEvent`, src/runs/run-snapshot.ts), as `readRun` answers it: the
 * AG-UI tests restore mappers from what the engine really holds, so the part
 * ids they compare are the fold's.
 */
import type { AgentsocketEvent } from '../../src/agui/agui-types.js';
import { publicRunSnapshot } from '../../src/broker/run-store.js';
import { foldRunEvent, type RunEventRecord } from '../../src/runs/run-snapshot.js';
import type { RunSnapshot } from '../../src/runs/run-types.js';

export function foldRun(events: readonly AgentsocketEvent[]): RunSnapshot {
  const first = events[0];
  if (first?.event !== 'agent_started') throw new Error('a run starts with agent_started');
  let snapshot: RunSnapshot | undefined;
  for (const event of events) {
    const record: RunEventRecord = {
      seq: event.seq,
      epoch: event.epoch,
      event: event.event,
      data: event.data,
      ts: event.ts,
      runId: event.runId ?? '',
    };
    if (event.seqFrom !== undefined) record.seqFrom = event.seqFrom;
    if (event.threadId !== undefined) record.threadId = event.threadId;
    snapshot = foldRunEvent(snapshot, record);
  }
  return publicRunSnapshot(snapshot!);
}
