// Tests that spawn the CLI run `dist/`: build it once before the suite unless
// `npm test` (scripts/run-tests.mjs) already did.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (process.env.AGENTSOCKET_SKIP_BUILD === '1') return;
  // `npm run build` is incremental: nothing to do when dist/ is fresh.
  execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
}
