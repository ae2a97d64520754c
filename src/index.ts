// The library: everything the CLI does, callable from a Node script.
export { readModel, decodeModel, type ReadOptions } from './io/read.js';
export { writeModel, type WriteOptions, type WriteResult, type WrittenFile } from './io/write.js';
export { decode, encode, encodeTo, encodedSize, DecodeError } from './io/codec.js';
export { readTensorFile, readTestDataSet, findTestDataSets, parseNpy, type NamedArray, type TestDataSet } from './io/testdata.js';
export * from './ir/onnx.js';
export { Model, type ModelSource } from './ir/model.js';
export { GraphIndex, implicitInputs, outerScopeNames } from './ir/graph.js';
export { replaceInput, insertNodeBefore, removeDeadNodes, removeUnusedInitializers, sortGraph } from './ir/rewrite.js';
export { GraphEditor, ModelEditor, SUBGRAPH_READ, type Use, type Place } from './ir/editor.js';
export { opsetVersion } from './ir/opset.js';
export { ensureOpset } from './convert/raise.js';
export { forEachGraph, forEachTensor, type GraphSite, type TensorSite } from './ir/walk.js';
export { tensorBytes, tensorValues, floatValues, constantTensor, makeTensor, numElements } from './ir/tensor.js';
export { dtypeInfo, dtypeName } from './ir/dtype.js';
export { PASSES, FAMILIES, findPass, makeStep, parseStep, listPasses, type Family, type PipelineStep } from './pipeline/registry.js';
export { runPipeline, PassError } from './pipeline/run.js';
export { definePass, type Pass, type PassContext, type PassSummary, type TensorChange, type Skip, type Finish } from './pass/pass.js';
export type { OptionSpec, OptionSpecs, OptionValue, OptionValues, OptionsOf } from './pass/options.js';
export { loadRecipe, parseRecipe, recipeData, type Recipe, type RecipeData, type RecipeEval, type RecipeGates } from './pipeline/recipe.js';
export { silentProgress, type Progress } from './kernels/progress.js';
export { compress, type CompressOptions, type CompressResult } from './pipeline/compress.js';
export { compressMany, type CompressManyOptions, type CompressManyResult } from './pipeline/compress-many.js';
export { inspectAcross, type AcrossFiles } from './report/inspect-many.js';
export {
  inspectModel,
  countParameters,
  renderInspect,
  type InspectReport,
  type ValueSummary,
  type TensorSummary,
  type TensorWhere,
  type Dim,
} from './report/inspect.js';
export {
  evaluate,
  METRICS,
  type Metric,
  type Evaluation,
  type EvaluateOptions,
  type AccuracyReport,
  type LatencyReport,
} from './report/evaluate.js';
export type { Fidelity, Classification } from './report/metrics.js';
export type { DataOptions } from './runtime/data.js';
export { buildReport, type BuildOptions } from './report/build.js';
export {
  checkGates,
  reportJson,
  REPORT_VERSION,
  type Report,
  type PassRecord,
  type GateResult,
  type GateOptions,
  type NodeError,
} from './report/report.js';
export type { TensorRow } from './report/tensors.js';
export type { FileSize } from './report/size.js';
export { renderTerminal, renderMarkdown } from './report/render.js';
export { renderHtml } from './report/html.js';
export { runConformance, type ConformanceReport } from './conformance/round-trip.js';
export { convertOpset, conversionLine, type ConversionSummary, type ConversionEntry } from './convert/convert.js';
export { InputError, UsageError, GateError, OutputError, ResourceError, knownError, exitCodeOf } from './errors.js';
