/**
 * A publish's answer is born in the young generation even after bursts whose
 * answers all outlived a scavenge (`src/gateway/publish-answer.ts` says why
 * an object literal there was pretenured, and what that cost).
 *
 * V8's pretenuring is only observable with `%InYoungGeneration`, so the check
 * runs in a child Node (`--allow-natives-syntax`, and a 1 MiB semi-space: V8
 * pretenures a site only in a scavenge of a new space at its largest, which
 * the smallest new space always is). The child first drives an object
 * literal through the same bursts and expects it pretenured: the setup can
 * show the failure, so an answer born young means something.
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** The built gateway (the suite's global setup builds `dist/`). */
const DIST_INDEX = new URL('../../dist/index.js', import.meta.url).href;

const CHILD = `
const { createGateway } = await import(${JSON.stringify(DIST_INDEX)});
const young = new Function('o', 'return %InYoungGeneration(o)');
const users = Array.from({ length: 2000 }, (_, i) => 'u' + i);
const event = () => ({ event: 'token', data: { text: 'x' }, critical: false });
let counter = 0;
const literal = () => ({ seq: ++counter, id: 'ev_' + counter.toString(36) });
// Bursts awaited as a whole, as a backend publishing a round would.
for (let round = 0; round < 20; round++) {
  await Promise.all(users.map(() => Promise.resolve(literal())));
}
let literalsOld = 0;
for (let i = 0; i < 100; i++) if (!young(literal())) literalsOld++;
const gateway = createGateway({ authenticator: { verify: async (t) => ({ userId: t, expiresAt: null }) } });
for (let round = 0; round < 20; round++) {
  await Promise.all(users.map((u) => gateway.publish(u, event())));
}
let answersOld = 0;
for (let i = 0; i < 100; i++) if (!young(await gateway.publish('u1', event()))) answersOld++;
process.stdout.write(JSON.stringify({ literalsOld, answersOld }));
process.exit(0);
`;

function runChild(): Promise<{ literalsOld: number; answersOld: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--allow-natives-syntax', '--max-semi-space-size=1', '--input-type=module', '-e', CHILD],
      { timeout: 25_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as { literalsOld: number; answersOld: number });
      },
    );
  });
}

describe('publish answers and V8 pretenuring', () => {
  it('are born young after bursts that pretenure an object literal', async () => {
    const counts = await runChild();
    // The premise: this V8 pretenures a literal whose objects outlive
    // scavenges (all 100 born old; checked as each is made).
    expect(counts.literalsOld, JSON.stringify(counts)).toBeGreaterThan(90);
    // A pretenured answer site gives 100 of 100. An answer is checked after
    // its promise settles, so a mark-compact in between (it promotes every
    // young survivor) can age one that was born young: a few, not most.
    expect(counts.answersOld, JSON.stringify(counts)).toBeLessThan(10);
  });
});
