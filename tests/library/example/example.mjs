import { readModel, writeModel, parseStep, loadRecipe, runPipeline, evaluate } from 'onnxpress';

const show = (name, passes) => {
  for (const p of passes) console.log(`${name}: ${p.pass} ${p.method}, ${p.tensors.length} tensors, ${p.bytesBefore} → ${p.bytesAfter} bytes`);
};

// A pipeline from the specs the CLI's --prune, --share and --quantize take, run in this order.
const steps = [parseStep('prune', 'magnitude:sparsity=0.3'), parseStep('quantize', 'int8:granularity=channel')];
const model = readModel('model.onnx');
show('steps', await runPipeline(model, steps));   // the passes change the model in place
writeModel(model, 'steps.onnx');

// The pipeline of a recipe file (the CLI's --recipe).
const recipe = loadRecipe('recipe.yaml');
const other = readModel('model.onnx');
show('recipe', await runPipeline(other, recipe.passes, { seed: recipe.seed }));
writeModel(other, 'recipe.onnx');

// Each output against the original, on the test data: accuracy, output fidelity, latency.
for (const output of ['steps.onnx', 'recipe.onnx']) {
  const { accuracy, latency } = await evaluate('model.onnx', output, { data: 'test_data_set_0', labels: 'labels.txt' });
  const cosine = Object.values(accuracy.fidelity).map((f) => f.cosine.toFixed(4)).join(', ');
  console.log(`${output}: ${accuracy.metric} ${accuracy.reference} → ${accuracy.compressed}, cosine ${cosine}, ${latency.ratio.toFixed(2)}× the time`);
}
