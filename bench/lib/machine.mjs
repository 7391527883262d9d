/** A one-line description of the machine a run measured, for the report. */
import os from 'node:os';
import { readFileSync } from 'node:fs';

function packageVersion(name) {
  try {
    const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

export function describeMachine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cpuCount: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    /** 1/5/15-minute load averages when the description was taken: other work on the machine. */
    loadAverage: os.loadavg().map((load) => Math.round(load * 100) / 100),
    versions: {
      ws: packageVersion('ws'),
      'socket.io': packageVersion('socket.io'),
      'socket.io-client': packageVersion('socket.io-client'),
      jose: packageVersion('jose'),
      ioredis: packageVersion('ioredis'),
    },
  };
}
