// The WebAssembly module: quantization, pruning, sorting and half-precision kernels (see each file).
export * from './quantize';
export * from './prune';
export * from './sort';
export * from './half';
