# ppocr-center-kit: __init__.py, added to PaddleOCR as ppocr/utils/kit_export/__init__.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The export of the per-class CTC feature centers (train_center.pkl) that CenterLoss loads,
which the kit's tools/export_center.py runs (cli.main).

Works with the unmodified training config of a plain CTC model (same centers as the stock
script), a MultiHead model (CTC+NRTR, CTC+SAR) and a Distillation model (Teacher/Student,
any sub-model names). The centers are the mean CTC-head input feature of every time step,
grouped by the argmax class, over the training images the model recognises exactly (as
upstream). The modules, each one part of it:

    config        the config, and what the export derives from it (heads, data, weights)
    center_math   sums and counts per class, the centers, sharding and all_reduce
    model         the model built, its weights loaded, its CTC heads returning features
    engines       the forward pass: Paddle Inference when it converts, else dygraph
    run           one export: devices, data, the loop, the centers written
    report        the report beside the pkl
    output_files  refuse existing outputs, write temp files, publish by a rename
    inference_model  a Paddle inference model's tensors placed in the config's model
    errors, cli   the one error and how it is printed; the command line

Only relative imports between them, and nothing from Paddle or PaddleOCR until a function
runs: the kit imports this folder as the package `kit_export` for the knowledge that needs
no Paddle (config derivation, center math, report, output rules) instead of keeping a copy.
"""
