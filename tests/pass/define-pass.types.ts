// Compiled by tsc in define-pass.test.ts, never run: the option types definePass infers from a
// declaration. Each `@ts-expect-error` line must be a compile error (tsc reports an unused one), and
// the test compiles the file again without them to see that each fails where it says and nowhere else.
import { expectTypeOf } from 'vitest';
import { selectionOptions, type OptionValues } from '../../src/pass/options.js';
import { definePass, emptySummary, type Pass } from '../../src/pass/pass.js';

const toy = definePass({
  family: 'prune',
  method: 'toy',
  description: 'a pass declared to check the types of its options',
  options: {
    count: { type: 'integer', min: 1, default: 2, description: 'with a default: always there' },
    ratio: { type: 'number', description: 'without a default: may be absent' },
    mode: { type: 'enum', choices: ['fast', 'exact'], default: 'fast', description: 'an enum: the union of its choices' },
    keep: { type: 'boolean', default: true, description: 'a boolean' },
    ops: { type: 'string', default: 'MatMul', description: 'text' },
    ...selectionOptions(256),
  },
  validate(options) {
    expectTypeOf(options.count).toEqualTypeOf<number>();
    expectTypeOf(options.ratio).toEqualTypeOf<number | undefined>();
    expectTypeOf(options.mode).toEqualTypeOf<'fast' | 'exact'>();
    expectTypeOf(options.keep).toEqualTypeOf<boolean>();
    expectTypeOf(options.ops).toEqualTypeOf<string>();
    expectTypeOf(options['min-size']).toEqualTypeOf<number>();
    expectTypeOf(options.include).toEqualTypeOf<string | undefined>();
    // @ts-expect-error: an enum option is only its choices
    if (options.mode === 'slow') return 'never';
    // @ts-expect-error: a number option is not text
    const text: string = options.count;
    // @ts-expect-error: an option without a default may be absent
    const ratio: number = options.ratio;
    // @ts-expect-error: an option that is not declared does not exist
    return options.block === 32 ? `${text}${ratio}` : undefined;
  },
  run(_model, options, _context) {
    // @ts-expect-error: a boolean option is not a number
    const half: number = options.keep / 2;
    return { ...emptySummary(this, options), notes: [`${half}`] };
  },
});

// Without a default for min-size, it may be absent.
const bare = definePass({
  family: 'share',
  method: 'bare',
  description: 'selection options without a min-size default',
  options: { ...selectionOptions() },
  run(_model, options) {
    expectTypeOf(options['min-size']).toEqualTypeOf<number | undefined>();
    return emptySummary(this, options);
  },
});

// The registry holds them erased, without casts; its callers pass OptionValues.
const registry: Pass[] = [toy, bare];
const erased: OptionValues = { count: 3 };
void registry[0]!.validate?.(erased);
