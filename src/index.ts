// The library: everything the CLI does, callable from a Node script.
export { readModel, decodeModel } from './io/read.js';
export { writeModel, type WriteOptions, type WriteResult, type WrittenFile } from './io/write.js';
export { decode, encode, encodeTo, encodedSize, DecodeError } from './io/codec.js';
export { readTensorFile, readTestDataSet, findTestDataSets, parseNpy, type NamedArray, type TestDataSet } from './io/testdata.js';
export * from './io/types.js';
export { Model, type ModelSource } from './ir/model.js';
export { GraphIndex, implicitInputs, outerScopeNames } from './ir/graph.js';
export { replaceInput, insertNodeBefore, removeDeadNodes, removeUnusedInitializers, sortGraph } from './ir/rewrite.js';
export { ensureOpset, opsetVersion } from './ir/opset.js';
export { forEachGraph, forEachTensor, type GraphSite, type TensorSite } from './ir/walk.js';
export { tensorBytes, tensorValues, floatValues, constantTensor, makeTensor, numElements } from './ir/tensor.js';
export { dtypeInfo, dtypeName } from './ir/dtype.js';
export { compress, type CompressOptions, type CompressResult } from './pipeline/compress.js';
export { inspectModel, type InspectReport } from './report/inspect.js';
export { renderInspect } from './cli/inspect.js';
export { runConformance, type ConformanceReport } from './report/conformance.js';
export { InputError, UsageError, GateError, OutputError } from './errors.js';
