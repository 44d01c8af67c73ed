# ppocr-center-kit: errors.py, added to PaddleOCR as ppocr/utils/kit_export/errors.py by the kit's
# patch common/0005. Written for ppocr-center-kit (MIT); it imports PaddleOCR at run time and copies none of it.
"""The export's one error, ExportError (a problem the user can fix), and how it is
printed: the kit's one line, and under GitHub Actions an annotation too.
"""

import os
import sys


class ExportError(Exception):
    """A problem the user can fix; reported as one line, exit code 2."""


def print_error(message):
    """The kit's one error line (the kit's centerkit.print_error, which the clone's process
    cannot import): on stderr, and under GitHub Actions also as an ::error workflow command, escaped
    as the runner unescapes it (centerkit.github.annotation; a kit test checks they agree)."""
    print("ppocr-center-kit: error: %s" % message, file=sys.stderr, flush=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print("::error title=ppocr-center-kit::%s" % escaped, flush=True)
