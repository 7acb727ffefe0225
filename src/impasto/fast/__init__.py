"""Fast feed-forward style transfer (Johnson, Alahi & Fei-Fei 2016; several styles in one network by
conditional instance normalisation, Dumoulin et al. 2017), in the order of the data flow:

- :mod:`.data`     — training photos as a reproducible stream of random crops
- :mod:`.network`  — the transform network
- :mod:`.train`    — training against the fixed VGG-19 loss network (a job: :mod:`impasto.job`)
- :mod:`.model`    — model files (``.pt``) and the bundled models
- :mod:`.onnx`     — export to ONNX and an onnxruntime runner
- :mod:`.stylise`  — one forward pass per image, over files and folders (a job)
"""
