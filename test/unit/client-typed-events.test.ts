/**
 * Typed custom events (protocol/typed-events.ts): an app declares its event
 * map once and the client (`onEvent`, `waitForEvent`), `createGateway` and
 * `agentRun` type the `data` of those events.
 *
 * Two layers: the `expectTypeOf` assertions below are checked by
 * `tsc -p tsconfig.json` (a wrong type there fails the type check); the last
 * tests compile misuses with the TypeScript compiler and require an error at
 * each, so the types are proven to refuse what they must, inside vitest.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { AgentSocketClient } from '../../src/client/index.js';
import type { TypedEventFrame } from '../../src/client/index.js';
import { agentRun } from '../../src/gateway/agent-run.js';
import type { GatewayNode } from '../../src/gateway/gateway.js';
import type { PublishResult } from '../../src/gateway/gateway-types.js';
import type { AgentTextData, JsonValue } from '../../src/protocol/index.js';

type MyEvents = {
  token: { text: string; index: number };
  'order.shipped': { orderId: string; items: string[] };
};

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A client that never connects: only its types are looked at. */
function typedClient(): AgentSocketClient<MyEvents> {
  return new AgentSocketClient<MyEvents>({ url: 'ws://127.0.0.1:1/v1/ws', token: 't' });
}

describe('typed custom events', () => {
  it('types onEvent: the declared events, the agent events, with runId where it is sure', () => {
    const client = typedClient();
    const seen: unknown[] = [];
    const off = client.onEvent('order.shipped', (e) => {
      expectTypeOf(e.data).toEqualTypeOf<{ orderId: string; items: string[] }>();
      expectTypeOf(e.runId).toEqualTypeOf<string | undefined>();
      expectTypeOf(e.event).toEqualTypeOf<'order.shipped'>();
      seen.push(e.data.orderId);
    });
    client.onEvent('agent_text', (e) => {
      expectTypeOf(e.data).toEqualTypeOf<AgentTextData>();
      expectTypeOf(e.runId).toEqualTypeOf<string>();
    });
    expectTypeOf<TypedEventFrame<MyEvents, 'token'>['data']>().toEqualTypeOf<{
      text: string;
      index: number;
    }>();
    // An undeclared name is not one onEvent takes.
    expectTypeOf(client.onEvent)
      .parameter(0)
      .toEqualTypeOf<
        | 'agent_started'
        | 'agent_thinking'
        | 'agent_text'
        | 'tool_executing'
        | 'tool_completed'
        | 'agent_completed'
        | 'token'
        | 'order.shipped'
      >();
    off();
    expect(seen).toEqual([]);
  });

  it('types waitForEvent of a declared event', () => {
    const client = typedClient();
    type Waited = Awaited<ReturnType<typeof client.waitForEvent<'token'>>>;
    expectTypeOf<Waited['data']>().toEqualTypeOf<{ text: string; index: number }>();
    expect(client.state).toBe('closed');
  });

  it('types gateway.publish and agentRun(...).emit by the same map', async () => {
    const published: unknown[] = [];
    const gateway = {
      publish: async (_userId: string, input: unknown): Promise<PublishResult> => {
        published.push(input);
        return { seq: published.length, epoch: 'e', id: 'x', delivered: 0, duplicate: false };
      },
    };
    const run = agentRun<MyEvents>(gateway, 'alice', 'r1');
    await run.emit('order.shipped', { orderId: 'o1', items: ['a'] });
    await run.emit('anything.else', { free: ['json'] });
    expectTypeOf(run.emit<'token'>)
      .parameter(1)
      .toEqualTypeOf<{ text: string; index: number }>();
    expectTypeOf(run.emit<'undeclared'>)
      .parameter(1)
      .toEqualTypeOf<JsonValue | undefined>();
    expectTypeOf<Parameters<GatewayNode<MyEvents>['publish']>[1]>().not.toBeAny();
    expect(published).toEqual([
      { runId: 'r1', event: 'order.shipped', data: { orderId: 'o1', items: ['a'] } },
      { runId: 'r1', event: 'anything.else', data: { free: ['json'] } },
    ]);
  });

  it('refuses a wrong data type, a misspelt declared field and an undeclared onEvent name', () => {
    const source = `
      import { AgentSocketClient } from './src/client/index.js';
      import { agentRun } from './src/gateway/agent-run.js';
      import type { GatewayNode } from './src/gateway/gateway.js';
      type MyEvents = { token: { text: string; index: number } };
      declare const client: AgentSocketClient<MyEvents>;
      declare const gateway: GatewayNode<MyEvents>;
      client.onEvent('token', (e) => { const n: number = e.data.text; return n; });      // line 8
      client.onEvent('tokn', () => {});                                                  // line 9
      void gateway.publish('alice', { event: 'token', data: { text: 'a' } });            // line 10
      void gateway.publish('alice', { event: 'token', data: { text: 1, index: 0 } });    // line 11
      void agentRun<MyEvents>(gateway, 'alice', 'r1').emit('token', { txt: 'a', index: 0 }); // line 12
      void agentRun<MyEvents>(gateway, 'alice', 'r1').emit('token');                     // line 13
      void gateway.publish('alice', { event: 'free', data: { any: ['json'] } });         // fine
      void agentRun<MyEvents>(gateway, 'alice', 'r1').emit('free');                      // fine
      client.onEvent('agent_thinking', (e) => e.data.text.toUpperCase());               // fine
    `;
    const file = `${root.replace(/\/$/, '')}/typed-events-probe.ts`;
    const options: ts.CompilerOptions = {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ['node'],
      skipLibCheck: true,
    };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    host.readFile = (name) => (name === file ? source : readFile(name));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => name === file || fileExists(name);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, version) =>
      name === file
        ? ts.createSourceFile(name, source, ts.ScriptTarget.ES2022, true)
        : getSourceFile(name, version);
    const program = ts.createProgram([file], options, host);
    const lines = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === file)
      .map((d) => d.file!.getLineAndCharacterOfPosition(d.start!).line + 1);
    expect([...new Set(lines)].sort((a, b) => a - b)).toEqual([8, 9, 10, 11, 12, 13]);
  }, 60_000);
});
