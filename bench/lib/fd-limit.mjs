/**
 * The open-file limit a run needs: each server and load generator holds one
 * socket per connection, plus some for the runtime.
 */
import { execFileSync } from 'node:child_process';

const RUNTIME_FDS = 512;

function shellLimit(flag) {
  const out = execFileSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
  return out === 'unlimited' ? Infinity : Number(out);
}

/** Throws a message saying what to do when `ulimit -n` is below what the run needs. */
export function checkFdLimit(socketsPerProcess) {
  const need = socketsPerProcess + RUNTIME_FDS;
  const soft = shellLimit('-n');
  if (soft >= need) return { soft, need };
  const hard = shellLimit('-Hn');
  const fix =
    hard >= need
      ? `raise it in this shell: ulimit -n ${need}  (hard limit: ${hard})`
      : `the hard limit is ${hard}: raise it (e.g. /etc/security/limits.conf, or run as root with ulimit -Hn ${need}), or use --quick`;
  throw new Error(
    `ulimit -n is ${soft}, this run needs ${need} open files per process ` +
      `(${socketsPerProcess} sockets + ${RUNTIME_FDS}); ${fix}`,
  );
}
