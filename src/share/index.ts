// The parameter-sharing passes (--share ...).
import type { Pass } from '../pipeline/pass.js';

export const SHARE_PASSES: Pass[] = [];
