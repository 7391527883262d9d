/**
 * The soak's checker must see what it claims to see: a device of the soak
 * (scripts/soak/soak-device.mjs) is fed frames by hand, as a gateway with a
 * fault would send them, and `checkUsers` (soak-report.mjs) must count each
 * fault, and nothing on a clean stream. Without this, a soak that reports
 * "0 lost" could be a soak that cannot see a loss.
 */
import { afterEach, describe, expect, it } from 'vitest';

interface Welcome {
  type: 'welcome';
  epoch: string;
  headSeq: number;
  replay: { from: number; count: number; gap: boolean };
}
interface Device {
  onWelcome(frame: Welcome): void;
  onEvent(frame: { seq: number; critical: boolean; data: { n: number } }): void;
  stop(): void;
}
interface User {
  id: string;
  token: string;
  devices: Device[];
  issued: number[];
  confirmed: Map<number, { seq: number; epoch: string }>;
  refused: number[];
}
interface Totals {
  lost: number;
  lostInExplainedGap: number;
  duplicated: number;
  reordered: number;
  redelivered: number;
  skips: number;
  gapsExplained: number;
  gapsUnexplained: number;
  unconfirmed: number;
}

// The soak is plain ESM over dist/ (no types): load it by URL and type what is used here.
const scriptUrl = (file: string): string =>
  new URL(`../../scripts/soak/${file}`, import.meta.url).href;
const { SoakDevice } = (await import(scriptUrl('soak-device.mjs'))) as {
  SoakDevice: new (user: User, index: number, pickUrl: () => string) => Device;
};
const { checkUsers } = (await import(scriptUrl('soak-report.mjs'))) as {
  checkUsers: (users: User[]) => { totals: Totals };
};

const users: User[] = [];

function user(): User {
  const u: User = {
    id: 'u1',
    token: 't',
    devices: [],
    issued: [],
    confirmed: new Map(),
    refused: [],
  };
  u.devices.push(new SoakDevice(u, 0, () => 'ws://127.0.0.1:1/v1/ws'));
  users.push(u);
  return u;
}

/** The publisher's side: counters 1..count confirmed with seqs 1..count in `epoch`. */
function confirm(u: User, from: number, to: number, epoch = 'e1', seqOffset = 0): void {
  for (let n = from; n <= to; n++) {
    u.issued.push(n);
    u.confirmed.set(n, { seq: n + seqOffset, epoch });
  }
}

const welcome = (epoch: string, headSeq: number, from: number, gap = false): Welcome => ({
  type: 'welcome',
  epoch,
  headSeq,
  replay: { from, count: 0, gap },
});

/** Events as `[seq, n]` pairs. */
function feed(device: Device, pairs: Array<[number, number]>): void {
  for (const [seq, n] of pairs) device.onEvent({ seq, critical: true, data: { n } });
}

afterEach(() => {
  for (const u of users.splice(0)) for (const d of u.devices) d.stop();
});

const totalsOf = (u: User): Totals => checkUsers([u]).totals;

describe('soak checker', () => {
  it('counts nothing on a clean stream resumed across a reconnect', () => {
    const u = user();
    const [device] = u.devices as [Device];
    confirm(u, 1, 4);
    device.onWelcome(welcome('e1', 0, 1));
    feed(device, [
      [1, 1],
      [2, 2],
    ]);
    device.onWelcome(welcome('e1', 4, 3));
    feed(device, [
      [3, 3],
      [4, 4],
    ]);
    expect(totalsOf(u)).toMatchObject({
      lost: 0,
      duplicated: 0,
      reordered: 0,
      skips: 0,
      redelivered: 0,
      gapsExplained: 0,
      gapsUnexplained: 0,
    });
  });

  it('counts a seq skipped without a gap welcome as a skip and its event as lost', () => {
    const u = user();
    const [device] = u.devices as [Device];
    confirm(u, 1, 3);
    device.onWelcome(welcome('e1', 0, 1));
    feed(device, [
      [1, 1],
      [3, 3],
    ]);
    expect(totalsOf(u)).toMatchObject({ lost: 1, skips: 1 });
  });

  it('counts one publish received under two seqs as duplicated', () => {
    const u = user();
    const [device] = u.devices as [Device];
    confirm(u, 1, 1);
    device.onWelcome(welcome('e1', 0, 1));
    feed(device, [
      [1, 1],
      [2, 1],
    ]);
    expect(totalsOf(u)).toMatchObject({ duplicated: 1, lost: 0 });
  });

  it('counts an earlier publish received after a later one as reordered', () => {
    const u = user();
    const [device] = u.devices as [Device];
    confirm(u, 1, 2);
    device.onWelcome(welcome('e1', 0, 1));
    feed(device, [
      [1, 2],
      [2, 1],
    ]);
    expect(totalsOf(u)).toMatchObject({ reordered: 1, lost: 0 });
  });

  it('sees a stream rolled back under the same epoch: unexplained gap, redelivered seqs, loss', () => {
    const u = user();
    const [device] = u.devices as [Device];
    confirm(u, 1, 5);
    device.onWelcome(welcome('e1', 0, 1));
    feed(device, [
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ]);
    // Redis lost seqs 4-5: the head is 3 again, the epoch is the same, and the
    // next publishes reuse seqs 4 and 5, which the client already holds.
    confirm(u, 6, 7, 'e1', -2);
    device.onWelcome(welcome('e1', 3, 1, true));
    feed(device, [
      [4, 6],
      [5, 7],
    ]);
    expect(totalsOf(u)).toMatchObject({ gapsUnexplained: 1, redelivered: 2, lost: 2 });
  });

  it('explains a gap of a new epoch and counts what it lost apart', () => {
    const u = user();
    const [device] = u.devices as [Device];
    confirm(u, 1, 3);
    device.onWelcome(welcome('e1', 0, 1));
    feed(device, [[1, 1]]);
    // Counters 2-3 were stored in e1 and lost with it; 4 is the new stream's first event.
    confirm(u, 4, 4, 'e2', -3);
    device.onWelcome(welcome('e2', 1, 1, true));
    feed(device, [[1, 4]]);
    expect(totalsOf(u)).toMatchObject({
      gapsExplained: 1,
      gapsUnexplained: 0,
      lost: 0,
      lostInExplainedGap: 2,
      skips: 0,
    });
  });
});
