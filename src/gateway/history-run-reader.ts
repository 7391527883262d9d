/**
 * A `RunReader` for engines without run snapshots: folds the run from the
 * user's retained history. Stand-in until every engine implements
 * `RunStore.readRun`; a run whose `agent_started` left history reads as
 * unknown here.
 */
import type { StreamEngine } from '../broker/stream-engine.js';
import { agentsocketEventOf } from '../agui/agentsocket-event.js';
import { encodeEventFrame } from '../protocol/event-frame.js';
import { foldRunEvent, type RunEventRecord } from '../runs/run-snapshot.js';
import type { RunSnapshot } from '../runs/run-types.js';
import type { RunReader } from './agui-run-stream.js';

export class HistoryRunReader implements RunReader {
  constructor(private readonly streams: Pick<StreamEngine, 'readHistory'>) {}

  async readRun(userId: string, runId: string): Promise<RunSnapshot | null> {
    const read = await this.streams.readHistory(userId, { kind: 'position', epoch: '', seq: 0 });
    let run: RunSnapshot | undefined;
    for (const stored of read.events) {
      const event = agentsocketEventOf(encodeEventFrame(stored), read.epoch);
      if (event.runId !== runId) continue;
      if (run === undefined && event.event !== 'agent_started') return null;
      const record: RunEventRecord = { ...event, runId };
      run = foldRunEvent(run, record);
    }
    return run ?? null;
  }
}
