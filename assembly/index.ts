// The WebAssembly module: quantization, pruning, sorting, half-precision and Cholesky kernels (see each file).
export * from './quantize';
export * from './prune';
export * from './sort';
export * from './half';
export * from './cholesky';
