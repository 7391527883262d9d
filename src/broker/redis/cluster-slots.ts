/**
 * Redis Cluster's key-to-slot rule (CRC16/XMODEM of the key, or of its hash
 * tag `{…}`, modulo 16384) and the slot table read from `CLUSTER SLOTS`.
 * Pure functions: the engine routes each user step itself (`shard-watch.ts`)
 * so it always knows which master, and which master's identity, a script
 * runs on.
 */
export const SLOT_COUNT = 16_384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
    table[i] = crc & 0xffff;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!) & 0xffff;
  return crc;
}

/** The slot of a key or a shard channel (the same rule for both). */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  let hashed = key;
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(hashed, 'utf8')) % SLOT_COUNT;
}

/** One master of the slot table: its address (`host:port`) and the slot ranges it serves. */
export interface SlotOwner {
  address: string;
  host: string;
  port: number;
  ranges: [number, number][];
}

/**
 * Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …], replicas…], …]`.
 * Returns the owner address of every slot ('' when none) and the masters. A
 * node that does not know its own address (a lone node: it learns it from
 * the nodes that meet it) answers '' or '?': that is `askedHost`, the host
 * the reply came from.
 */
export function parseClusterSlots(
  reply: unknown,
  askedHost: string,
): { owners: string[]; masters: SlotOwner[] } {
  if (!Array.isArray(reply)) throw new Error('CLUSTER SLOTS: malformed reply');
  const owners = new Array<string>(SLOT_COUNT).fill('');
  const masters = new Map<string, SlotOwner>();
  for (const range of reply) {
    if (!Array.isArray(range) || !Array.isArray(range[2])) {
      throw new Error('CLUSTER SLOTS: malformed range');
    }
    const [start, end] = [Number(range[0]), Number(range[1])];
    const given = String(range[2][0]);
    const host = given === '' || given === '?' ? askedHost : given;
    const port = Number(range[2][1]);
    if (!Number.isInteger(start) || !Number.isInteger(end) || !Number.isInteger(port)) {
      throw new Error('CLUSTER SLOTS: malformed range');
    }
    const address = `${host}:${port}`;
    const owner = masters.get(address) ?? { address, host, port, ranges: [] };
    owner.ranges.push([start, end]);
    masters.set(address, owner);
    for (let slot = Math.max(0, start); slot <= Math.min(end, SLOT_COUNT - 1); slot++) {
      owners[slot] = address;
    }
  }
  return { owners, masters: [...masters.values()] };
}
