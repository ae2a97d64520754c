// Which weights the pruning passes consider: the common choice (see pipeline/select.ts).
export { chooseWeights as prunableWeights } from '../pipeline/select.js';
