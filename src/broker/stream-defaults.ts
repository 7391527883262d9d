export const HISTORY_DEFAULTS = { historySize: 1000, historyTtlMs: 3_600_000 } as const;
