// The WebAssembly module: quantization and pruning kernels (see each file).
export * from './quantize';
export * from './prune';
