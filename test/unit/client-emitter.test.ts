import { describe, expect, it } from 'vitest';
import { TypedEmitter } from '../../src/client/index.js';

interface Events {
  tick: number;
  name: string;
}

class Emitter extends TypedEmitter<Events> {
  readonly listenerErrors: unknown[] = [];
  fire<K extends keyof Events>(name: K, payload: Events[K]): void {
    this.emit(name, payload);
  }
  protected override onListenerError(error: unknown): void {
    this.listenerErrors.push(error);
  }
}

describe('TypedEmitter', () => {
  it('delivers to listeners by name and removes them with the returned function', () => {
    const emitter = new Emitter();
    const seen: number[] = [];
    const off = emitter.on('tick', (n) => seen.push(n));
    emitter.fire('tick', 1);
    emitter.fire('name', 'ignored');
    off();
    emitter.fire('tick', 2);
    expect(seen).toEqual([1]);
    expect(emitter.listenerCount('tick')).toBe(0);
  });

  it('runs a once listener once', () => {
    const emitter = new Emitter();
    const seen: number[] = [];
    emitter.once('tick', (n) => seen.push(n));
    emitter.fire('tick', 1);
    emitter.fire('tick', 2);
    expect(seen).toEqual([1]);
  });

  it('refuses a listener past maxListeners for one name', () => {
    const emitter = new Emitter(3);
    for (let i = 0; i < 3; i++) emitter.on('tick', () => {});
    expect(() => emitter.on('tick', () => {})).toThrow(RangeError);
    expect(emitter.listenerCount('tick')).toBe(3);
    // The limit is per name.
    expect(() => emitter.on('name', () => {})).not.toThrow();
  });

  it('keeps calling the other listeners when one throws, and reports the error', () => {
    const emitter = new Emitter();
    const seen: number[] = [];
    emitter.on('tick', () => {
      throw new Error('boom');
    });
    emitter.on('tick', (n) => seen.push(n));
    emitter.fire('tick', 7);
    expect(seen).toEqual([7]);
    expect(emitter.listenerErrors).toHaveLength(1);
  });
});
