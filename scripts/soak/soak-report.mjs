/**
 * The verdict of a soak run: per user and device, what was published
 * (confirmed by an answer naming a seq) against what the "app" received
 * (each seq of an epoch once, as the SDK hands it over), and the text and
 * JSON summary printed at the end.
 *
 * Per device, for the events of its user:
 * - lost: confirmed and never received. An event lost inside an explained
 *   gap (its confirmed epoch is not the epoch the device ended in, and the
 *   device saw a `gap: true` welcome for a new epoch) is counted apart as
 *   `lostInExplainedGap`: the protocol allows it and said so.
 * - duplicated: one publish counter received twice (under two seqs).
 * - reordered: a counter received after a higher one.
 * - unconfirmed: issued but never answered by the end; received or not, it
 *   is not counted as lost (nobody was told it was stored), only reported.
 */

/**
 * True when an event confirmed in `epoch` and missing on `device` went with
 * a stream the device was told it lost: it left that epoch through a
 * `gap: true` welcome of a new epoch.
 */
export function lostInNewEpochGap(device, epoch) {
  return epoch !== device.epoch && device.gaps.some((g) => g.explained && g.reason === 'new epoch');
}

/** True when the device holds every confirmed event of its user it can still get. */
export function caughtUp(user, device) {
  for (const [n, { epoch }] of user.confirmed) {
    if (!device.deliveredSet.has(n) && !lostInNewEpochGap(device, epoch)) return false;
  }
  return true;
}

export function checkUsers(users) {
  const totals = {
    users: users.length,
    devices: 0,
    published: 0,
    unconfirmed: 0,
    unconfirmedReceived: 0,
    refused: 0,
    received: 0,
    lost: 0,
    lostInExplainedGap: 0,
    duplicated: 0,
    reordered: 0,
    redelivered: 0,
    skips: 0,
    gapsExplained: 0,
    gapsUnexplained: 0,
    connects: 0,
    refusedHandshakes: 0,
    drops: 0,
    stalls: 0,
    errorFrames: 0,
  };
  const closes = {};
  const gapReasons = {};
  const perUser = [];
  for (const user of users) {
    const row = {
      user: user.id,
      published: user.confirmed.size,
      unconfirmed: user.issued.length - user.confirmed.size - user.refused.length,
      devices: [],
    };
    totals.published += row.published;
    totals.unconfirmed += row.unconfirmed;
    totals.refused += user.refused.length;
    for (const device of user.devices) {
      let lost = 0;
      let lostInExplainedGap = 0;
      for (const [n, { epoch }] of user.confirmed) {
        if (device.deliveredSet.has(n)) continue;
        if (lostInNewEpochGap(device, epoch)) lostInExplainedGap++;
        else lost++;
      }
      let unconfirmedReceived = 0;
      for (const n of device.deliveredSet) if (!user.confirmed.has(n)) unconfirmedReceived++;
      const gapsExplained = device.gaps.filter((g) => g.explained).length;
      const gapsUnexplained = device.gaps.length - gapsExplained;
      for (const gap of device.gaps) gapReasons[gap.reason] = (gapReasons[gap.reason] ?? 0) + 1;
      for (const [code, count] of device.closes) closes[code] = (closes[code] ?? 0) + count;
      const c = device.counts;
      row.devices.push({
        received: device.delivered.length,
        lost,
        lostInExplainedGap,
        duplicated: c.duplicates,
        reordered: c.reordered,
        redelivered: c.redelivered,
        skips: c.skips,
        gapsExplained,
        gapsUnexplained,
      });
      totals.devices++;
      totals.received += device.delivered.length;
      totals.lost += lost;
      totals.lostInExplainedGap += lostInExplainedGap;
      totals.unconfirmedReceived += unconfirmedReceived;
      totals.duplicated += c.duplicates;
      totals.reordered += c.reordered;
      totals.redelivered += c.redelivered;
      totals.skips += c.skips;
      totals.gapsExplained += gapsExplained;
      totals.gapsUnexplained += gapsUnexplained;
      totals.connects += c.connects;
      totals.refusedHandshakes += c.refused;
      totals.drops += c.drops;
      totals.stalls += c.stalls;
      totals.errorFrames += c.errorFrames;
    }
    perUser.push(row);
  }
  return { totals, closes, gapReasons, perUser };
}

/** True when the row shows anything the docs do not allow. */
export function rowHasProblem(row) {
  return (
    row.unconfirmed > 0 ||
    row.devices.some(
      (d) =>
        d.lost + d.duplicated + d.reordered + d.skips + d.gapsUnexplained + d.lostInExplainedGap >
        0,
    )
  );
}

/** The reasons the run fails (empty: it passed). */
export function failures({ totals }, { chaosFailures, publishUnexpected, caughtUp }) {
  const reasons = [];
  if (totals.lost > 0) reasons.push(`${totals.lost} events lost`);
  if (totals.duplicated > 0) reasons.push(`${totals.duplicated} events duplicated`);
  if (totals.reordered > 0) reasons.push(`${totals.reordered} events reordered`);
  if (totals.skips > 0) reasons.push(`${totals.skips} seq skips without a gap welcome`);
  if (totals.gapsUnexplained > 0) reasons.push(`${totals.gapsUnexplained} unexplained gaps`);
  if (totals.refused > 0) reasons.push(`${totals.refused} publishes refused (4xx)`);
  if (publishUnexpected > 0) reasons.push(`${publishUnexpected} unexpected publish answers`);
  if (chaosFailures.length > 0) reasons.push(`chaos failed: ${chaosFailures.join('; ')}`);
  if (!caughtUp) reasons.push('clients did not catch up before the deadline');
  return reasons;
}

const pad = (value, width) => String(value).padStart(width);

/** The human-readable report, as lines. */
export function renderReport({
  check,
  rss,
  rssPeakTrend,
  counters,
  chaos,
  publisher,
  options,
  elapsed,
  perUser,
}) {
  const t = check.totals;
  const lines = [];
  lines.push('', '=== soak: per user (published = confirmed by an answer naming a seq) ===');
  lines.push(
    `${'user'.padEnd(10)} ${pad('published', 9)} ${pad('received', 18)} ${pad('lost', 5)} ${pad('dup', 4)} ${pad('reord', 5)} ${pad('gaps', 5)} ${pad('unconf', 6)}`,
  );
  const rows = perUser ? check.perUser : check.perUser.filter(rowHasProblem);
  for (const row of rows) {
    const sum = (key) => row.devices.reduce((a, d) => a + d[key], 0);
    lines.push(
      `${row.user.padEnd(10)} ${pad(row.published, 9)} ${pad(row.devices.map((d) => d.received).join('/'), 18)} ${pad(sum('lost') + sum('lostInExplainedGap'), 5)} ${pad(sum('duplicated'), 4)} ${pad(sum('reordered'), 5)} ${pad(sum('gapsExplained') + sum('gapsUnexplained'), 5)} ${pad(row.unconfirmed, 6)}`,
    );
  }
  if (!perUser) {
    lines.push(
      `(${rows.length} of ${check.perUser.length} users shown: those with a problem; --per-user shows all)`,
    );
  }
  lines.push('', '=== soak: totals ===');
  lines.push(
    `users ${t.users}, devices ${t.devices}, events published ${t.published} (unconfirmed ${t.unconfirmed}, refused ${t.refused}), received by devices ${t.received}`,
    `lost ${t.lost}, lost inside an explained gap ${t.lostInExplainedGap}, duplicated ${t.duplicated}, reordered ${t.reordered}, seq skips ${t.skips}`,
    `gaps: explained ${t.gapsExplained}, unexplained ${t.gapsUnexplained} ${JSON.stringify(check.gapReasons)}`,
    `redelivered seqs dropped by the client (at-least-once) ${t.redelivered}; unconfirmed events received ${t.unconfirmedReceived}`,
    `connects ${t.connects}, refused handshakes ${t.refusedHandshakes}, drops ${t.drops}, stalls ${t.stalls}, error frames ${t.errorFrames}`,
    `client-side closes by code ${JSON.stringify(check.closes)}`,
    `publisher ${JSON.stringify(publisher)}`,
  );
  lines.push('', '=== soak: chaos ===');
  const byAction = {};
  for (const a of chaos) byAction[a.action] = (byAction[a.action] ?? 0) + 1;
  lines.push(JSON.stringify(byAction));
  for (const a of chaos.filter((x) => !['drop socket', 'stall reader'].includes(x.action))) {
    lines.push(`  +${a.t}s ${a.action} ${a.detail}`);
  }
  lines.push(
    '',
    '=== soak: RSS per process (MiB; drift = slope over the second half of a long life, MiB/min) ===',
  );
  for (const p of rss) {
    lines.push(
      `${p.process.padEnd(14)} pid ${pad(p.pid, 7)} ${pad(p.fromS, 4)}-${pad(p.toS, 4)}s first ${pad(p.firstMiB, 6)} peak ${pad(p.peakMiB, 6)} last ${pad(p.lastMiB, 6)} drift ${pad(p.driftMiBPerMin ?? 'n/a', 6)}  [${p.seriesMiB.join(' ')}]`,
    );
  }
  lines.push(
    `trend of the node incarnations' peak RSS over the run (lived >= 60 s): ${rssPeakTrend ?? 'n/a'} MiB per 10 min`,
  );
  lines.push('', '=== soak: node counters (sum over every node incarnation) ===');
  lines.push(`errors (/v1/stats) ${JSON.stringify(counters.errors)}`);
  lines.push(`events (/v1/stats) ${JSON.stringify(counters.events)}`);
  for (const [name, value] of Object.entries(counters.counters)) {
    lines.push(`${name} ${JSON.stringify(value)}`);
  }
  lines.push('', `options ${JSON.stringify(options)}; elapsed ${Math.round(elapsed / 1000)} s`);
  return lines;
}
