# A numpy reference for SparseGPT on the char LM, written from the paper (Frantar & Alistarh 2023,
# Algorithm 1), independent of src/: the figures in bench/RESULTS.md, "Calibrated pruning".
#   .venv/bin/python bench/sparsegpt-reference.py check    # our pruned weights against this reference, two layers
#   .venv/bin/python bench/sparsegpt-reference.py order    # one-shot (one calibration run) vs layer blocks in sequence
#   .venv/bin/python bench/sparsegpt-reference.py joint    # prune then 4-bit vs both in one sweep
# `check` needs the outputs of: bin/onnxpress compress fixtures/charlm/model.onnx -o /tmp/sg.onnx
#   --prune sparsegpt:sparsity=0.5,calibration=fixtures/charlm/calibration,damp=0.01  (and /tmp/sg24.onnx with n=2,m=4)
import copy
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def sparsegpt(W, H, sparsity=0.5, prunen=0, prunem=0, blocksize=128, percdamp=0.01):
    W = W.astype(np.float64).copy(); H = H.astype(np.float64).copy()
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    damp = percdamp * np.mean(np.diag(H))
    H[np.arange(cols), np.arange(cols)] += damp
    Hinv = np.linalg.inv(H)
    U = np.linalg.cholesky(Hinv).T  # upper, UᵀU = H⁻¹
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols); count = i2 - i1
        W1 = W[:, i1:i2].copy(); Err1 = np.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        mask1 = np.zeros_like(W1, dtype=bool)
        if prunen == 0:
            tmp = W1 ** 2 / (np.diag(U1).reshape(1, -1)) ** 2
            k = int(tmp.size * sparsity)
            order = np.argsort(tmp.T.flatten(), kind='stable')  # ties aside
            flat = np.zeros(tmp.size, dtype=bool); flat[order[:k]] = True
            mask1 = flat.reshape(count, rows).T
        for i in range(count):
            w = W1[:, i]; d = U1[i, i]
            if prunen != 0 and i % prunem == 0:
                tmp = W1[:, i:i + prunem] ** 2 / (np.diag(U1)[i:i + prunem].reshape(1, -1)) ** 2
                idx = np.argsort(tmp, axis=1, kind='stable')[:, :prunem - prunen]
                for r in range(rows): mask1[r, i + idx[r]] = True
            q = w.copy(); q[mask1[:, i]] = 0
            err1 = (w - q) / d
            W1[:, i:] -= np.outer(err1, U1[i, i:])
            W1[:, i] = q
            Err1[:, i] = err1
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
    return W


base = onnx.load('fixtures/charlm/model.onnx')
cal = numpy_helper.to_array(onnx.load_tensor('fixtures/charlm/calibration/test_data_set_0/input_0.pb'))
tx = numpy_helper.to_array(onnx.load_tensor('fixtures/charlm/test_data_set_0/input_0.pb'))
ty = numpy_helper.to_array(onnx.load_tensor('fixtures/charlm/test_data_set_0/labels_0.pb'))
inits = {t.name: t for t in base.graph.initializer}
layers = [(n.input[1], n.input[0]) for n in base.graph.node if n.op_type == 'MatMul' and n.input[1] in inits]


def ppl(m):
    s = ort.InferenceSession(m.SerializeToString())
    lo = s.run(None, {'input_ids': tx})[0]
    lo = lo - lo.max(-1, keepdims=True)
    lp = lo - np.log(np.exp(lo).sum(-1, keepdims=True))
    return float(np.exp(-np.take_along_axis(lp, ty[..., None], -1).mean()))


def acts(m, names):
    m2 = copy.deepcopy(m)
    for x in names:
        m2.graph.output.append(onnx.ValueInfoProto(name=x))
    outs = ort.InferenceSession(m2.SerializeToString()).run(names, {'input_ids': cal})
    return {x: o.reshape(-1, o.shape[-1]).astype(np.float64) for x, o in zip(names, outs)}


def check():
    A = acts(base, sorted({x for _, x in layers}))
    for wname, xname in [('onnx::MatMul_407', '/blocks.0/ln2/LayerNormalization_output_0'), ('onnx::MatMul_408', '/blocks.0/Mul_2_output_0')]:
        W = numpy_helper.to_array(inits[wname])
        H = A[xname].T @ A[xname]
        for out, kw in [('/tmp/sg.onnx', {}), ('/tmp/sg24.onnx', dict(prunen=2, prunem=4))]:
            ours = numpy_helper.to_array([t for t in onnx.load(out).graph.initializer if t.name == wname][0])
            ref = sparsegpt(W.T, H, 0.5, **kw).T
            print(wname, out, 'same zeros', np.mean((ours == 0) == (ref == 0)), 'max |diff|', np.abs(ours - ref).max())


def order():
    def run(sequential, damp, **kw):
        m = copy.deepcopy(base)
        init = {t.name: t for t in m.graph.initializer}
        groups = {}
        for w, x in layers:
            groups.setdefault(x.split('/')[1], []).append((w, x))
        stages = list(groups.values()) if sequential else [layers]
        for stage in stages:
            A = acts(m if sequential else base, sorted({x for _, x in stage}))
            for w, x in stage:
                W = numpy_helper.to_array(init[w])
                P = sparsegpt(W.T, A[x].T @ A[x], 0.5, percdamp=damp, **kw).T.astype(np.float32)
                init[w].CopyFrom(numpy_helper.from_array(P, w))
        return ppl(m)

    b = ppl(base)
    for seq in (False, True):
        for damp in (0.01, 0.03, 0.1):
            u, nm = run(seq, damp) / b - 1, run(seq, damp, prunen=2, prunem=4) / b - 1
            print('blocks in sequence' if seq else 'one-shot', 'damp', damp, f'50 % {100 * u:+.2f} %  2:4 {100 * nm:+.2f} %')


def factor(H, damp):
    H = H.copy(); d = np.diag(H).copy(); d[d == 0] = 1; H[np.diag_indices_from(H)] = d + damp * np.mean(np.diag(H))
    return np.linalg.cholesky(np.linalg.inv(H)).T
def sweep(W, U, prune, quant, mask=None, sparsity=0.5, block=128, qblock=32):
    # W [K, N] (ONNX layout), rows = input features. prune: choose mask adaptively; mask: fixed zeros.
    W = W.astype(np.float64).copy(); K, N = W.shape
    M = np.zeros_like(W, dtype=bool) if mask is None else mask.copy()
    scale = np.ones(N)
    for b0 in range(0, K, block):
        b1 = min(K, b0 + block)
        if prune:
            s = W[b0:b1] ** 2 / (np.diag(U)[b0:b1, None] ** 2)
            k = int(np.floor(sparsity * b1 * N)) - int(M[:b0].sum())
            idx = np.argsort(s.flatten(), kind='stable')[:k]
            f = np.zeros(s.size, dtype=bool); f[idx] = True; M[b0:b1] = f.reshape(s.shape)
        for r in range(b0, b1):
            if quant and r % qblock == 0:
                blk = np.where(M[r:r + qblock], 0, W[r:r + qblock])
                scale = np.abs(blk).max(0) / 7; scale[scale == 0] = 1
            q = W[r].copy()
            if quant: q = np.clip(np.round(q / scale), -7, 7) * scale
            q[M[r]] = 0
            e = (W[r] - q) / U[r, r]
            W[r] = q
            W[r + 1:] -= np.outer(U[r, r + 1:], e)
    return W, M
def run(mode, damp=0.03):
    A = acts(base, sorted({x for _, x in layers}))
    m = copy.deepcopy(base); init = {t.name: t for t in m.graph.initializer}
    for w, x in layers:
        W = numpy_helper.to_array(init[w]); U = factor(A[x].T @ A[x], damp)
        if mode == 'prune': P, _ = sweep(W, U, True, False)
        elif mode == 'joint': P, _ = sweep(W, U, True, True)
        elif mode == 'sequential':
            P1, M = sweep(W, U, True, False); P, _ = sweep(P1.astype(np.float32), U, False, True, mask=M)
        init[w].CopyFrom(numpy_helper.from_array(P.astype(np.float32), w))
    return ppl(m)
def joint():
    b = ppl(base)
    for mode in ('prune', 'sequential', 'joint'): print(mode, f'{100 * (run(mode) / b - 1):+.2f} %')


if __name__ == '__main__':
    {'check': check, 'order': order, 'joint': joint}[sys.argv[1]]()
