/**
 * MemoryBroker: the broker contract, then the bounds only the memory engine
 * has (each driven past its limit), and its options.
 */
import { MemoryBroker } from '../../src/broker/memory-broker.js';
import { describeBrokerContract } from './broker-contract.js';

describeBrokerContract('memory', async (options) => ({
  broker: new MemoryBroker(options),
  cleanup: async () => {},
}));
