// The pruning passes (--prune ...).
import type { Pass } from '../pass/pass.js';
import { magnitudePass } from './magnitude.js';
import { nmPass } from './nm.js';
import { structuredPass } from './structured.js';
import { headsPass } from './heads.js';
import { sparsegptPass } from './sparsegpt.js';
import { wandaPass } from './wanda.js';

export const PRUNE_PASSES: Pass[] = [magnitudePass, nmPass, structuredPass, headsPass, wandaPass, sparsegptPass];
