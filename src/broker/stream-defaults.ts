/**
 * The history defaults every stream engine starts from (memory, Redis) and
 * the gateway's options repeat: one place for both figures.
 */
export const HISTORY_DEFAULTS = { historySize: 1000, historyTtlMs: 3_600_000 } as const;
