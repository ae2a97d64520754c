// The parameter-sharing passes (--share ...).
import type { Pass } from '../pass/pass.js';
import { clusterPass } from './cluster.js';
import { dedupPass } from './dedup.js';
import { nearPass } from './near.js';

export const SHARE_PASSES: Pass[] = [dedupPass, nearPass, clusterPass];
