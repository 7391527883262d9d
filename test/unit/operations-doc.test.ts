/** Keeps docs/operations.md in step with the flag table, the routes and the metrics. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { defaultText } from '../../src/options/option-spec.js';
import { SERVE_OPTIONS } from '../../src/server/serve-options.js';

const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');

describe('docs/operations.md', () => {
  it('lists every flag of serve with its variable, default and description', () => {
    for (const spec of SERVE_OPTIONS) {
      expect(doc, spec.flag).toContain(
        `| \`${spec.flag}\` | \`${spec.env}\` | ${defaultText(spec)} | ${spec.description} |`,
      );
    }
  });

  it('names every old variable as an alias of the one read now', () => {
    const aliased = SERVE_OPTIONS.flatMap((spec) =>
      'aliases' in spec ? spec.aliases.map((alias) => [alias, spec.env] as const) : [],
    );
    expect(aliased.length).toBeGreaterThan(0);
    for (const [alias, env] of aliased) {
      expect(doc, alias).toContain(`| \`${alias}\` | \`${env}\` |`);
    }
  });

  it('lists every metric of the registry', async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    const names = (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(doc, name).toContain(`\`${name}\``);
  });

  it('documents every route of the HTTP API', () => {
    for (const route of [
      'POST /v1/users/{userId}/events',
      'POST /v1/events',
      'POST /v1/broadcast',
      'GET` / `DELETE /v1/users/{userId}/connections',
      'POST /v1/tickets',
      'GET /v1/stats',
      'GET /healthz',
      'GET /readyz',
      'GET /metrics',
    ]) {
      expect(doc, route).toContain(route);
    }
  });
});
