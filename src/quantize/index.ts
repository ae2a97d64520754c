// The quantization passes (--quantize ...).
import type { Pass } from '../pass/pass.js';
import { int4Pass } from './int4.js';
import { int8Pass } from './int8.js';
import { bf16Pass, fp16Pass } from './half.js';

export const QUANTIZE_PASSES: Pass[] = [int8Pass, int4Pass, fp16Pass, bf16Pass];
