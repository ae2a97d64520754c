#!/usr/bin/env python3
# Usage: .venv/bin/python bench/lstm-forms.py (prints JSON: median ms, ratio to float32, output cosine per form)
# DynamicQuantizeLSTM (ORT's integer LSTM, what quantize_dynamic writes) against the float LSTM and our weight-only int8.
import numpy as np, onnx, onnxruntime as ort, time, subprocess, json, sys, os, tempfile
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(tempfile.mkdtemp(prefix='onnxpress-lstm-'))  # the models are written here, not in the checkout
from onnx import helper as h, TensorProto as T, numpy_helper as nh
from onnxruntime.quantization import quantize_dynamic, QuantType
res={}
for H,I,S in [(64,64,32),(128,64,100),(256,128,100)]:
    rng=np.random.default_rng(0)
    W=rng.normal(0,0.1,(1,4*H,I)).astype(np.float32); R=rng.normal(0,0.1,(1,4*H,H)).astype(np.float32); B=np.zeros((1,8*H),np.float32)
    g=h.make_graph([h.make_node('LSTM',['x','W','R','B'],['Y','Y_h','Y_c'],hidden_size=H)],'g',[h.make_tensor_value_info('x',T.FLOAT,[S,1,I])],
      [h.make_tensor_value_info('Y',T.FLOAT,None),h.make_tensor_value_info('Y_h',T.FLOAT,None),h.make_tensor_value_info('Y_c',T.FLOAT,None)],[nh.from_array(W,'W'),nh.from_array(R,'R'),nh.from_array(B,'B')])
    m=h.make_model(g,opset_imports=[h.make_opsetid('',14)]); m.ir_version=8; onnx.save(m,f'l{H}.onnx')
    quantize_dynamic(f'l{H}.onnx',f'l{H}-ort.onnx',weight_type=QuantType.QInt8)
    subprocess.run(['node',os.path.join(ROOT, 'bin/onnxpress'),'compress',f'l{H}.onnx','-o',f'l{H}-ours.onnx','--force','--quantize','int8'],check=True,capture_output=True)
    ops=[n.op_type for n in onnx.load(f'l{H}-ort.onnx').graph.node]
    so=ort.SessionOptions(); so.intra_op_num_threads=1; so.inter_op_num_threads=1
    sess={k:ort.InferenceSession(p,so,providers=['CPUExecutionProvider']) for k,p in [('fp32',f'l{H}.onnx'),('ort-dq-lstm',f'l{H}-ort.onnx'),('ours-weight-only',f'l{H}-ours.onnx')]}
    x=rng.normal(size=(S,1,I)).astype(np.float32)
    ref=sess['fp32'].run(None,{'x':x})[0]
    times={k:[] for k in sess}
    for k in sess:
        for _ in range(20): sess[k].run(None,{'x':x})
    for r in range(300):
        for k in sess:
            t=time.perf_counter(); sess[k].run(None,{'x':x}); times[k].append(time.perf_counter()-t)
    out={}
    for k in sess:
        y=sess[k].run(None,{'x':x})[0]; cos=float((y*ref).sum()/np.sqrt((y*y).sum()*(ref*ref).sum()))
        out[k]={'median_ms':1000*float(np.median(times[k])),'ratio':float(np.median(times[k])/np.median(times['fp32'])),'cosine':cos}
    out['ort_ops']=ops
    res[f'H={H},I={I},S={S}']=out
print(json.dumps(res,indent=1))
