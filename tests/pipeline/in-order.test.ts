// inOrder (kernels/pool.ts): results in item order whatever order the jobs end in, at most `window`
// items ahead, and with `aheadBytes` at most that many of the items' bytes started and not yet
// yielded (the next item always starts), which is what bounds pruning's results held in memory.
import { describe, expect, it } from 'vitest';
import { inOrder } from '../../src/kernels/pool.js';
import { silentProgress } from '../../src/kernels/progress.js';

/** Jobs that end in reverse order of start within each batch of starts (later ones first). */
async function drive(sizes: number[], window: number, aheadBytes?: number) {
  let inFlight = 0,
    worst = 0;
  const order: number[] = [];
  const report = { progress: silentProgress, label: 'test', bytesOf: (i: number) => sizes[i]! };
  const start = (i: number) => {
    inFlight += sizes[i]!;
    worst = Math.max(worst, inFlight);
    return new Promise<number>((resolve) => setTimeout(() => resolve(i * 10), 5 + ((sizes.length - i) % 4)));
  };
  const items = sizes.map((_, i) => i);
  for await (const [i, r] of inOrder(items, window, start, report, aheadBytes)) {
    expect(r).toBe(i * 10);
    order.push(i);
    inFlight -= sizes[i]!;
  }
  return { order, worst };
}

describe('inOrder', () => {
  const sizes = [300, 50, 50, 50, 200, 50, 50, 50, 50, 400, 50, 50];

  it('yields every result in item order', async () => {
    const { order } = await drive(sizes, 8);
    expect(order).toEqual(sizes.map((_, i) => i));
  });

  it('without a byte bound, holds as much as the window lets it', async () => {
    const { worst } = await drive(sizes, 64);
    expect(worst).toBe(sizes.reduce((a, b) => a + b, 0));
  });

  it('with aheadBytes, never starts past the bound unless the item is the next to yield', async () => {
    const { order, worst } = await drive(sizes, 64, 450);
    expect(order).toEqual(sizes.map((_, i) => i));
    expect(worst).toBeLessThanOrEqual(450);
    // An item larger than the bound still runs, alone.
    const big = await drive([100, 900, 100], 64, 450);
    expect(big.order).toEqual([0, 1, 2]);
    expect(big.worst).toBe(900);
  });
});
