# ppocr-center-kit: cli.py, added to PaddleOCR as ppocr/utils/kit_export/cli.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The command line of tools/export_center.py (`-c CONFIG -o Key=value ...`), which only
calls main() here.
"""

import sys

from .config import check_rec_ctc_config, load_config, parse_opts
from .errors import ExportError, print_error
from .run import run


def parse_args(argv):
    import argparse

    parser = argparse.ArgumentParser(description="Export the per-class CTC feature centers (train_center.pkl) "
                                                 "that CenterLoss loads.")
    parser.add_argument("-c", "--config", required=True, help="training config (yml)")
    parser.add_argument(
        "-o", "--opt", nargs="+", action="extend", default=[], help="Key.sub=value ..."
    )
    args = parser.parse_args(argv)
    return args.config, parse_opts(args.opt)


def main(argv=None):
    """The export, run in the clone (tools/export_center.py put the clone's root on sys.path);
    its exit code: 0, 2 for an ExportError (one line), 130 for Ctrl-C."""
    try:
        config_path, opts = parse_args(sys.argv[1:] if argv is None else argv)
        config = load_config(config_path, opts)
        check_rec_ctc_config(config)
        from ppocr.utils.logging import get_logger

        run(config, get_logger())
    except ExportError as e:
        print_error(str(e))
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, not Paddle's frames (temp files are gone by now)
        print("ppocr-center-kit: interrupted", file=sys.stderr)
        return 130
    return 0
