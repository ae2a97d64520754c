import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_FUNCTION_DEPTH, MAX_NODES, MAX_SUBGRAPH_DEPTH } from '../../src/ir/limits.js';
import { cli, scratch, type CliResult } from '../helpers.js';
import {
  call,
  chainedFunctions,
  doublingFunctions,
  graph,
  identities,
  localFunction,
  model,
  nestedThroughFunctions,
  save,
  valueInfo,
} from './models.js';

const dir = scratch();

function refused(r: CliResult, message: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
}

describe('structural limits, checked as a model is read', () => {
  it('20,000 chained model-local functions (ONNX Runtime segfaults on them) are refused; 100 are accepted and run', () => {
    const deep = save(join(dir, 'chain-20000.onnx'), chainedFunctions(20_000));
    refused(cli(['inspect', deep]), /chain-20000\.onnx: model-local functions call each other 20000 deep, over the limit of 100$/);
    const out = join(dir, 'chain-out.onnx');
    refused(cli(['compress', deep, '-o', out, '--quantize', 'int8']), /20000 deep/);
    expect(existsSync(out)).toBe(false);
    const ok = save(join(dir, 'chain-100.onnx'), chainedFunctions(MAX_FUNCTION_DEPTH));
    expect(cli(['inspect', ok]).code).toBe(0);
    const r = cli(['eval', ok, '--reference', ok, '--runs', '0']);
    expect(r.code, r.stderr).toBe(0);
    refused(
      cli(['inspect', save(join(dir, 'chain-101.onnx'), chainedFunctions(MAX_FUNCTION_DEPTH + 1))]),
      /101 deep, over the limit of 100/,
    );
  });

  it('recursive functions are refused, with the cycle', () => {
    const functions = [localFunction('fa', [call('fb', ['a'], ['b'])]), localFunction('fb', [call('fa', ['a'], ['b'])])];
    const path = save(
      join(dir, 'recursive.onnx'),
      model(graph([call('fa', ['x'], ['y'])], [valueInfo('x')], [valueInfo('y')]), { functions }),
    );
    refused(cli(['inspect', path]), /recursive\.onnx: model-local function 'local:fa' calls itself \(local:fa -> local:fb -> local:fa\)/);
    const self = save(
      join(dir, 'self.onnx'),
      model(graph([call('fa', ['x'], ['y'])], [valueInfo('x')], [valueInfo('y')]), {
        functions: [localFunction('fa', [call('fa', ['a'], ['b'])])],
      }),
    );
    refused(cli(['inspect', self]), /calls itself \(local:fa -> local:fa\)/);
  });

  it('subgraphs nested past the limit through function calls are refused; at the limit they are accepted', () => {
    refused(
      cli(['inspect', save(join(dir, 'nested-65.onnx'), nestedThroughFunctions(MAX_SUBGRAPH_DEPTH + 1))]),
      /nested-65\.onnx: subgraphs \(If\/Loop\/Scan bodies\) nested 65 deep, counting through function calls, over the limit of 64$/,
    );
    expect(cli(['inspect', save(join(dir, 'nested-64.onnx'), nestedThroughFunctions(MAX_SUBGRAPH_DEPTH))]).code).toBe(0);
  });

  it('more nodes than the limit are refused, counted as declared and as expanded through functions; at the limit they are accepted', () => {
    refused(
      cli(['inspect', save(join(dir, 'nodes-over.onnx'), identities(MAX_NODES + 1))]),
      /nodes-over\.onnx: 500001 nodes \(graph, subgraphs and local functions\), over the limit of 500000$/,
    );
    const r = cli(['inspect', save(join(dir, 'nodes-at.onnx'), identities(MAX_NODES))]);
    expect(r.code, r.stderr).toBe(0);
    // 1.4 KB that ONNX Runtime would inline into half a billion nodes.
    refused(
      cli(['inspect', save(join(dir, 'doubling-30.onnx'), doublingFunctions(30))]),
      /doubling-30\.onnx: 536870912 nodes once its local functions are expanded where they are called, over the limit of 500000$/,
    );
    expect(cli(['inspect', save(join(dir, 'doubling-19.onnx'), doublingFunctions(19))]).code).toBe(0);
  });
});
