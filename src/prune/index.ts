// The pruning passes (--prune ...).
import type { Pass } from '../pipeline/pass.js';

export const PRUNE_PASSES: Pass[] = [];
