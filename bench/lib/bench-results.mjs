/**
 * The figures of a run: every repetition's value per scenario, metric and
 * system, summarized as median and range, with the ratios the report prints.
 */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export class BenchResults {
  constructor() {
    /** scenario id → metric key → system → number[] */
    this.values = {};
    /** scenario id → system → diagnostics of each repetition */
    this.diagnostics = {};
    /** scenario id → system → error message of failed repetitions */
    this.failures = {};
  }

  add(scenarioId, system, values, diagnostics) {
    const scenario = (this.values[scenarioId] ??= {});
    for (const [metric, value] of Object.entries(values)) {
      if (value === null || value === undefined || !Number.isFinite(value)) continue;
      ((scenario[metric] ??= {})[system] ??= []).push(value);
    }
    ((this.diagnostics[scenarioId] ??= {})[system] ??= []).push(diagnostics);
  }

  /** Rebuilds the results of a run from its `toJSON` form (to render a report again). */
  static fromJSON(scenariosJson) {
    const results = new BenchResults();
    for (const [scenarioId, scenario] of Object.entries(scenariosJson)) {
      for (const [metric, entry] of Object.entries(scenario.metrics)) {
        for (const [system, summary] of Object.entries(entry.systems)) {
          ((results.values[scenarioId] ??= {})[metric] ??= {})[system] = [...summary.values];
        }
      }
      results.diagnostics[scenarioId] = scenario.diagnostics ?? {};
      results.failures[scenarioId] = scenario.failures ?? {};
    }
    return results;
  }

  fail(scenarioId, system, error) {
    ((this.failures[scenarioId] ??= {})[system] ??= []).push(String(error?.message ?? error));
  }

  /** `{median, min, max, n}` or null when nothing was measured. */
  summary(scenarioId, metric, system) {
    const values = this.values[scenarioId]?.[metric]?.[system];
    if (!values || values.length === 0) return null;
    return {
      median: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
      n: values.length,
    };
  }

  /** Median of `system` over median of `reference`; null when either is missing. */
  ratio(scenarioId, metric, system, reference) {
    const a = this.summary(scenarioId, metric, system);
    const b = this.summary(scenarioId, metric, reference);
    if (!a || !b || b.median === 0) return null;
    return a.median / b.median;
  }

  toJSON(scenarios, systems) {
    const out = {};
    for (const scenario of scenarios) {
      const metrics = {};
      for (const metric of scenario.metrics) {
        const bySystem = {};
        for (const system of systems) {
          const summary = this.summary(scenario.id, metric.key, system);
          if (summary)
            bySystem[system] = { ...summary, values: this.values[scenario.id][metric.key][system] };
        }
        metrics[metric.key] = {
          label: metric.label,
          unit: metric.unit,
          better: metric.better,
          systems: bySystem,
          ratios: {
            agentsocketVsWs: this.ratio(scenario.id, metric.key, 'agentsocket', 'ws'),
            agentsocketVsSocketio: this.ratio(scenario.id, metric.key, 'agentsocket', 'socketio'),
            socketioVsWs: this.ratio(scenario.id, metric.key, 'socketio', 'ws'),
            agentsocketRedisVsWs: this.ratio(scenario.id, metric.key, 'agentsocket-redis', 'ws'),
            agentsocketRedisVsAgentsocket: this.ratio(
              scenario.id,
              metric.key,
              'agentsocket-redis',
              'agentsocket',
            ),
          },
        };
      }
      out[scenario.id] = {
        title: scenario.title,
        metrics,
        diagnostics: this.diagnostics[scenario.id] ?? {},
        failures: this.failures[scenario.id] ?? {},
      };
    }
    return out;
  }
}
