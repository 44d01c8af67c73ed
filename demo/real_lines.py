"""Text lines of look-alike characters rendered with real fonts, as a released recognizer
reads them: 48 px high, at most 320 px wide (PP-OCRv4's input shape, so PaddleOCR's Eval
pipeline and its predictor see the same pixels), dark text on a light page.

Latin look-alikes (0 O D Q, 1 l I 7, 5 S, 8 B, 2 Z, 6 G, rn/m, vv/w) mixed with ordinary
letters and digits, in the DejaVu fonts matplotlib ships. Same arguments, same files.

    python demo/real_lines.py OUT_DIR --lines 40 --seed 1
    -> OUT_DIR/img/<i>.png and OUT_DIR/labels.txt ("img/<i>.png<TAB>text")
"""

import argparse
import os

import numpy as np

HEIGHT, MAX_WIDTH = 48, 320
LOOKALIKES = ("0ODQ", "1lI7", "5S", "8B", "2Z", "6G", ("rn", "m"), ("vv", "w"))
ORDINARY = "abcdefghijkmnopqrstuxyzACEFHJKLMNPRTUVWXY3489"
LATIN_FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf")


def font_paths(names=LATIN_FONTS):
    """The font files of matplotlib's bundled DejaVu family."""
    import matplotlib

    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    return [os.path.join(folder, n) for n in names]


def line_text(rng, length):
    """A line of `length` units, about half of them look-alike characters or pairs."""
    out = []
    while len("".join(out)) < length:
        if rng.random() < 0.5:
            group = LOOKALIKES[int(rng.integers(len(LOOKALIKES)))]
            out.append(group[int(rng.integers(len(group)))])
        else:
            out.append(ORDINARY[int(rng.integers(len(ORDINARY)))])
    return "".join(out)


def render(text, font_path, rng):
    """A grey uint8 image HEIGHT px high of `text` in the font, at most MAX_WIDTH wide."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, int(rng.integers(30, 38)))
    left, top, right, bottom = font.getbbox(text)
    margin = int(rng.integers(4, 10))
    page = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), int(rng.integers(200, 256)))
    ImageDraw.Draw(page).text((margin - left, margin - top), text, font=font, fill=int(rng.integers(0, 70)))
    width = min(MAX_WIDTH, max(HEIGHT, round(page.width * HEIGHT / page.height)))
    image = np.asarray(page.resize((width, HEIGHT), Image.BILINEAR), np.float32)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_lines(out_dir, lines, seed, min_len=4, max_len=9):
    """Write `lines` rendered lines under out_dir; returns the label file's path."""
    import cv2

    rng = np.random.default_rng(seed)
    fonts = font_paths()
    os.makedirs(os.path.join(out_dir, "img"), exist_ok=True)
    rows = []
    for i in range(lines):
        text = line_text(rng, int(rng.integers(min_len, max_len + 1)))
        name = "img/%d.png" % i
        if not cv2.imwrite(os.path.join(out_dir, name), render(text, fonts[i % len(fonts)], rng)):
            raise OSError("cannot write %s" % os.path.join(out_dir, name))
        rows.append("%s\t%s\n" % (name, text))
    path = os.path.join(out_dir, "labels.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(rows)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(make_lines(args.out_dir, args.lines, args.seed))
