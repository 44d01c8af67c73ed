"""Text lines of look-alike characters rendered with real fonts, as a released recognizer
reads them: 48 px high, at most 320 px wide (PP-OCRv4's input shape, so PaddleOCR's Eval
pipeline and its predictor see the same pixels), dark text on a light page.

- Latin lines: look-alikes (0 O D Q, 1 l I 7, 5 S, 8 B, 2 Z, 6 G, rn/m, vv/w) mixed with
  ordinary letters and digits, in the DejaVu fonts matplotlib ships;
- Chinese lines (chinese=0.5: half of them): look-alikes (己已巳, 未末, 土士, 日曰, 人入八,
  天夭, 戊戌戍, 贝见, 王玉, 大太犬, 折拆, 侯候) mixed with common characters, in Noto Sans
  CJK SC (OFL-1.1, from the pinned package centerkit.released_models.CJK_FONT), Regular
  and Bold.

Same arguments, same files.

    python demo/real_lines.py OUT_DIR --lines 40 --seed 1 [--chinese 0.5]
    -> OUT_DIR/img/<i>.png and OUT_DIR/labels.txt ("img/<i>.png<TAB>text")
"""

import argparse
import os

import numpy as np

HEIGHT, MAX_WIDTH = 48, 320
LOOKALIKES = ("0ODQ", "1lI7", "5S", "8B", "2Z", "6G", ("rn", "m"), ("vv", "w"))
ORDINARY = "abcdefghijkmnopqrstuxyzACEFHJKLMNPRTUVWXY3489"
LATIN_FONTS = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf")
CHINESE_LOOKALIKES = ("己已巳", "未末", "土士", "日曰", "人入八", "天夭", "戊戌戍", "贝见", "王玉", "大太犬", "折拆", "侯候")
CHINESE_ORDINARY = ("的一是在不了有和这中为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
                    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去"
                    "把性好应开它合还因由其些然前外政四那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质")
CHINESE_WEIGHTS = (b"Regular", b"Bold")


def font_paths(names=LATIN_FONTS):
    """The font files of matplotlib's bundled DejaVu family."""
    import matplotlib

    folder = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    return [os.path.join(folder, n) for n in names]


def line_text(rng, length, lookalikes=LOOKALIKES, ordinary=ORDINARY):
    """A line of `length` units, about half of them look-alike characters or pairs."""
    out = []
    while len("".join(out)) < length:
        if rng.random() < 0.5:
            group = lookalikes[int(rng.integers(len(lookalikes)))]
            out.append(group[int(rng.integers(len(group)))])
        else:
            out.append(ordinary[int(rng.integers(len(ordinary)))])
    return "".join(out)


def _font(face, size):
    """A PIL font of face: a path, or (collection path, index, variation name)."""
    from PIL import ImageFont

    if isinstance(face, str):
        return ImageFont.truetype(face, size)
    path, index, weight = face
    font = ImageFont.truetype(path, size, index=index)
    font.set_variation_by_name(weight)
    return font


def render(text, face, rng):
    """A grey uint8 image HEIGHT px high of `text` in the font, at most MAX_WIDTH wide."""
    from PIL import Image, ImageDraw

    font = _font(face, int(rng.integers(30, 38)))
    left, top, right, bottom = font.getbbox(text)
    margin = int(rng.integers(4, 10))
    page = Image.new("L", (right - left + 2 * margin, bottom - top + 2 * margin), int(rng.integers(200, 256)))
    ImageDraw.Draw(page).text((margin - left, margin - top), text, font=font, fill=int(rng.integers(0, 70)))
    width = min(MAX_WIDTH, max(HEIGHT, round(page.width * HEIGHT / page.height)))
    image = np.asarray(page.resize((width, HEIGHT), Image.BILINEAR), np.float32)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_lines(out_dir, lines, seed, chinese=0.0, min_len=4, max_len=9):
    """Write `lines` rendered lines under out_dir (a `chinese` share of them Chinese, which
    fetches the pinned CJK font once); returns the label file's path."""
    import cv2

    rng = np.random.default_rng(seed)
    latin = font_paths()
    cjk = None
    if chinese:
        from centerkit.released_models import CJK_FONT_SC, cjk_font

        path = cjk_font(log=lambda line: print(line, flush=True))
        cjk = [(path, CJK_FONT_SC, w) for w in CHINESE_WEIGHTS]
    os.makedirs(os.path.join(out_dir, "img"), exist_ok=True)
    rows = []
    for i in range(lines):
        length = int(rng.integers(min_len, max_len + 1))
        if cjk and rng.random() < chinese:
            text, face = line_text(rng, length, CHINESE_LOOKALIKES, CHINESE_ORDINARY), cjk[i % len(cjk)]
        else:
            text, face = line_text(rng, length), latin[i % len(latin)]
        name = "img/%d.png" % i
        if not cv2.imwrite(os.path.join(out_dir, name), render(text, face, rng)):
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
    parser.add_argument("--chinese", type=float, default=0.0, help="the share of Chinese lines (0..1)")
    args = parser.parse_args()
    print(make_lines(args.out_dir, args.lines, args.seed, args.chinese))
