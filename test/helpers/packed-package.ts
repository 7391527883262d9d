/**
 * The package as a user gets it: `npm pack` on a clean copy of the repository
 * (its `prepack` builds), then the tarball installed into a fresh app.
 *
 * The install needs no network: the tarball is unpacked into the app's
 * `node_modules/agentsocket`, and the package's production dependencies (the
 * transitive closure of `dependencies` and required peers, as npm would hoist
 * them) are symlinked from this repository's `node_modules`. Dev dependencies
 * are not linked, so a type the package forgot to depend on is missing, as it
 * would be for a user.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface PackageManifest {
  name: string;
  bin?: Record<string, string>;
  exports?: Record<string, { types: string; default: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; rejects with its output when it exits non-zero. */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stdout}`));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * Copies what a clone would hold (tracked files, and new files not ignored,
 * so uncommitted work is tested too) into `cloneDir`, with this repository's
 * `node_modules` linked in, as `npm ci` would have filled it.
 */
export async function cleanClone(cloneDir: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '-co', '--exclude-standard'], {
    cwd: REPO_ROOT,
  });
  for (const file of stdout.split('\0')) {
    const from = join(REPO_ROOT, file);
    if (file === '' || !existsSync(from)) continue; // deleted but not yet committed
    mkdirSync(dirname(join(cloneDir, file)), { recursive: true });
    copyFileSync(from, join(cloneDir, file));
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(cloneDir, 'node_modules'), 'dir');
}

/** `npm pack` in `packageDir` (its `prepack` runs); the tarball's path. */
export async function pack(packageDir: string, destination: string): Promise<string> {
  await run('npm', ['pack', '--pack-destination', destination], { cwd: packageDir });
  const tarball = readdirSync(destination).find((name) => name.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack left no tarball in ${destination}`);
  return join(destination, tarball);
}

/** The paths in a tarball, relative to its `package/` folder. */
export async function tarballFiles(tarball: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-tzf', tarball], { cwd: dirname(tarball) });
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/^package\//, ''));
}

function manifestOf(dir: string): PackageManifest {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageManifest;
}

/** Names npm would install for `manifest`: its dependencies and required peers, transitively. */
export function productionClosure(manifest: PackageManifest, nodeModules: string): Set<string> {
  const found = new Set<string>();
  const visit = (pkg: PackageManifest): void => {
    const optional = pkg.peerDependenciesMeta ?? {};
    const names = [
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}).filter((name) => !optional[name]?.optional),
    ];
    for (const name of names) {
      if (found.has(name) || !existsSync(join(nodeModules, name, 'package.json'))) continue;
      found.add(name);
      visit(manifestOf(join(nodeModules, name)));
    }
  };
  visit(manifest);
  return found;
}

/**
 * Installs `tarball` into the app at `appDir` (which has its package.json):
 * unpacked as `node_modules/<name>`, its production dependencies linked from
 * this repository, its bins linked into `node_modules/.bin`. Returns the
 * installed package's manifest.
 */
export async function installTarball(tarball: string, appDir: string): Promise<PackageManifest> {
  const nodeModules = join(appDir, 'node_modules');
  mkdirSync(join(nodeModules, '.bin'), { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', nodeModules], { cwd: appDir });
  const unpacked = join(nodeModules, 'package');
  const manifest = manifestOf(unpacked);
  renameSync(unpacked, join(nodeModules, manifest.name));
  const repoModules = join(REPO_ROOT, 'node_modules');
  for (const name of productionClosure(manifest, repoModules)) {
    mkdirSync(dirname(join(nodeModules, name)), { recursive: true });
    symlinkSync(join(repoModules, name), join(nodeModules, name), 'dir');
  }
  for (const [bin, target] of Object.entries(manifest.bin ?? {})) {
    const file = join(nodeModules, manifest.name, target);
    chmodSync(file, 0o755); // as npm does for a bin
    symlinkSync(file, join(nodeModules, '.bin', bin));
  }
  return manifest;
}
