import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { VerifiedUser } from '../../src/auth/authenticator.js';
import { MemoryTicketStore } from '../../src/auth/memory-ticket-store.js';
import { TICKET_TTL_MS } from '../../src/auth/ticket-store.js';

const START = Date.UTC(2030, 0, 1);
const alice: VerifiedUser = { userId: 'alice', expiresAt: null };
const bob: VerifiedUser = { userId: 'bob', expiresAt: null };

describe('MemoryTicketStore', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(START);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('issues 32 random bytes in base64url, valid for 30 s', async () => {
    const store = new MemoryTicketStore();
    const issued = await Promise.all(Array.from({ length: 100 }, () => store.issue(alice)));
    expect(new Set(issued.map(({ ticket }) => ticket)).size).toBe(100);
    for (const { ticket, expiresAt } of issued) {
      expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(ticket, 'base64url')).toHaveLength(32);
      expect(expiresAt).toBe(START + TICKET_TTL_MS);
    }
  });

  it('opens once: the second consume gets null', async () => {
    const store = new MemoryTicketStore();
    const { ticket } = await store.issue(alice);
    expect(await store.consume(ticket)).toBe(alice);
    expect(await store.consume(ticket)).toBeNull();
    expect(store.size).toBe(0);
  });

  it('gives null for an unknown ticket and for a non-string', async () => {
    const store = new MemoryTicketStore();
    await store.issue(alice);
    expect(await store.consume('x'.repeat(43))).toBeNull();
    expect(await store.consume('')).toBeNull();
    expect(await store.consume(42 as unknown as string)).toBeNull();
    expect(store.size).toBe(1);
  });

  it('expires at 30 s: valid at 29.999 s, refused at 30 s', async () => {
    const store = new MemoryTicketStore();
    const early = await store.issue(alice);
    const late = await store.issue(alice);
    vi.advanceTimersByTime(TICKET_TTL_MS - 1);
    expect(await store.consume(early.ticket)).toBe(alice);
    vi.advanceTimersByTime(1);
    expect(await store.consume(late.ticket)).toBeNull();
    // Refused and also gone: an expired ticket is consumed too.
    expect(store.size).toBe(0);
  });

  it('never outlives the token it was issued with, and returns the user as given', async () => {
    const store = new MemoryTicketStore();
    const shortLived: VerifiedUser = { userId: 'carol', expiresAt: START + 10_000 };
    const longLived: VerifiedUser = { userId: 'carol', expiresAt: START + 3_600_000 };
    const short = await store.issue(shortLived);
    const long = await store.issue(longLived);
    expect(short.expiresAt).toBe(START + 10_000);
    expect(long.expiresAt).toBe(START + TICKET_TTL_MS);
    vi.advanceTimersByTime(10_000);
    expect(await store.consume(short.ticket)).toBeNull();
    const user = await store.consume(long.ticket);
    expect(user).toBe(longLived);
    expect(user?.expiresAt).toBe(START + 3_600_000);
  });

  it('keeps at most maxPerUser tickets of a user, dropping that user’s oldest', async () => {
    const store = new MemoryTicketStore({ maxPerUser: 3 });
    const bobs = await store.issue(bob);
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push(await store.issue(alice));
    expect(store.size).toBe(4);
    expect(await store.consume(mine[0]?.ticket ?? '')).toBeNull();
    expect(await store.consume(mine[1]?.ticket ?? '')).toBeNull();
    for (const { ticket } of mine.slice(2)) expect(await store.consume(ticket)).toBe(alice);
    // Another user's ticket is untouched by alice's bound.
    expect(await store.consume(bobs.ticket)).toBe(bob);
  });

  it('past maxTickets, drops the oldest live ticket', async () => {
    const store = new MemoryTicketStore({ maxTickets: 4 });
    const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'].map((userId): VerifiedUser => ({
      userId,
      expiresAt: null,
    }));
    const issued = [];
    for (const user of users) {
      issued.push(await store.issue(user));
      vi.advanceTimersByTime(1_000);
    }
    expect(store.size).toBe(4);
    expect(await store.consume(issued[0]?.ticket ?? '')).toBeNull();
    expect(await store.consume(issued[1]?.ticket ?? '')).toBeNull();
    for (const [i, { ticket }] of issued.entries()) {
      if (i >= 2) expect(await store.consume(ticket)).toBe(users[i]);
    }
  });

  it('past maxTickets, drops expired tickets before any live one', async () => {
    const store = new MemoryTicketStore({ maxTickets: 4 });
    for (let i = 0; i < 3; i++) await store.issue({ userId: `old${i}`, expiresAt: null });
    vi.advanceTimersByTime(TICKET_TTL_MS);
    const live = await store.issue(alice);
    expect(store.size).toBe(4);
    const fresh = await store.issue(bob);
    // The three expired ones went; the oldest live one stayed.
    expect(store.size).toBe(2);
    expect(await store.consume(live.ticket)).toBe(alice);
    expect(await store.consume(fresh.ticket)).toBe(bob);
  });

  it('sweep drops expired tickets (TTL over or token expired) and keeps live ones', async () => {
    const store = new MemoryTicketStore();
    await store.issue(alice);
    await store.issue({ userId: 'dave', expiresAt: START + 5_000 });
    vi.advanceTimersByTime(10_000);
    const live = await store.issue(bob);
    expect(await store.sweep(Date.now())).toBe(1);
    expect(store.size).toBe(2);
    vi.advanceTimersByTime(TICKET_TTL_MS - 10_000);
    expect(await store.sweep(Date.now())).toBe(1);
    expect(store.size).toBe(1);
    expect(await store.sweep(Date.now())).toBe(0);
    expect(await store.consume(live.ticket)).toBe(bob);
  });

  it('takes an injected clock', async () => {
    let now = 1_000;
    const store = new MemoryTicketStore({ now: () => now, ttlMs: 500 });
    const { ticket, expiresAt } = await store.issue(alice);
    expect(expiresAt).toBe(1_500);
    now = 1_500;
    expect(await store.consume(ticket)).toBeNull();
  });

  it.each([
    [{ ttlMs: 0 }, 'options.ttlMs must be a positive integer, got 0'],
    [{ maxTickets: 1.5 }, 'options.maxTickets must be a positive integer, got 1.5'],
    [{ maxPerUser: -1 }, 'options.maxPerUser must be a positive integer, got -1'],
    [{ now: 5 as unknown as () => number }, 'options.now must be a function'],
  ])('refuses options %o', (options, message) => {
    // A TypeError with exactly this message (an OptionError for the number options).
    expect(() => new MemoryTicketStore(options)).toThrow(TypeError);
    expect(() => new MemoryTicketStore(options)).toThrow(expect.objectContaining({ message }));
  });
});
