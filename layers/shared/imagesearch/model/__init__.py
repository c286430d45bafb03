"""The CLIP model bundle: manifest, preprocessing, tokenizer and the onnxruntime embedder.

Submodules are imported explicitly (`from imagesearch.model.embedder import get_embedder`) so that reading
a manifest does not load onnxruntime.
"""
