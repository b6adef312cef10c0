"""kosearch's ``Encoder.encode_documents`` vs plain ``SentenceTransformer.encode``, batch 64 and 32 each,
on the same 754 Kiwi sentences of 400 NSMC reviews, torch 1 thread, interleaved in two rounds
(forward, then reversed order): a check of whether kosearch's encoding path costs anything.

Usage: OMP_NUM_THREADS=1 nice -n 10 python bench/bench_encoder_batch_check.py
"""
import json, sys, time
from pathlib import Path
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import torch
torch.set_num_threads(1)
from sentence_transformers import SentenceTransformer
from kosearch.documents.split import split_text
from kosearch.encoders import Encoder, bundled_model_path
import bench_segments
reviews = bench_segments.read_reviews()[300_000:300_400]
sentences = [s.text for r in reviews for s in split_text(r, mode="sentence")]
k = Encoder(None, device="cpu"); plain = SentenceTransformer(str(bundled_model_path()), device="cpu")
prompt = k.prompts.get("document", "")
print("kosearch model class", type(k.model), k.model.device, next(k.model.parameters()).dtype, "plain", next(plain.parameters()).dtype, flush=True)
k.encode_documents(sentences[:32]); plain.encode(sentences[:32], prompt=prompt)
out = {}
arms = [("kosearch b64", lambda: k.encode_documents(sentences, batch_size=64)), ("kosearch b32", lambda: k.encode_documents(sentences, batch_size=32)),
        ("plain b32", lambda: plain.encode(sentences, prompt=prompt, batch_size=32, normalize_embeddings=True)), ("plain b64", lambda: plain.encode(sentences, prompt=prompt, batch_size=64, normalize_embeddings=True))]
for order in (arms, arms[::-1]):
    for name, f in order:
        t = time.perf_counter(); f(); out.setdefault(name, []).append(round(time.perf_counter() - t, 2))
        print(name, out[name], flush=True)
print(json.dumps({"sentences": len(sentences), **out}))
