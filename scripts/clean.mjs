#!/usr/bin/env node
// Removes the build output (and its incremental build info with it), so the
// next build starts from nothing: `prepack` uses it so a package never ships
// a compiled file whose source is gone.
import { rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
