// The WebAssembly module: quantization, pruning and sorting kernels (see each file).
export * from './quantize';
export * from './prune';
export * from './sort';
