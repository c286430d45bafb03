"""The demo domain: generated pictures of coloured shapes, the small CLIP trained on them, and a gallery.

`imagesearch.demo.shapes` needs only Pillow and numpy (tests, benchmarks and `imagesearch demo seed` use
it); `imagesearch.demo.train` needs the export extra (torch, open_clip). See docs/demo-model.md.
"""
