# ppocr-center-kit: export_center.py, a drop-in replacement for PaddleOCR's
# tools/export_center.py. Written for ppocr-center-kit (MIT); it imports PaddleOCR at
# run time and copies none of it.
"""Export the per-class CTC feature centers (train_center.pkl) that CenterLoss loads, for a
plain CTC, MultiHead (CTC+NRTR, CTC+SAR) or Distillation config:

    python tools/export_center.py -c CONFIG -o Global.checkpoints=output/x/best_accuracy \
        [Export.model=Student] [Export.output=train_center.pkl] [Export.force=true] \
        [Export.mode=eval|train] [Export.engine=auto|inference|dygraph]

The export is ppocr/utils/kit_export/ (the kit's patches add it beside this script).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
from ppocr.utils.kit_export.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
