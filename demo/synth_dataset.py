"""Tiny synthetic text-line dataset for PaddleOCR recognition demos and tests.

Renders short labels (1..max_len characters of a small alphabet, digits by default) on
fixed-size grey images with OpenCV's built-in Hershey vector fonts (no font files, no
downloads), and writes what PaddleOCR's SimpleDataSet / MultiScaleDataSet read:

    <out_dir>/dict.txt            one character per line
    <out_dir>/train_list.txt      "train/00000.png<TAB>label" lines
    <out_dir>/val_list.txt        "val/00000.png<TAB>label" lines
    <out_dir>/train/*.png, <out_dir>/val/*.png

Same arguments, same seed -> byte-identical files. ~1000 images take well under a second.

    python synth_dataset.py /tmp/demo-work/data --n-train 1000 --n-val 200 --seed 0
    from synth_dataset import make_dataset; paths = make_dataset("/tmp/d", 1000, 200, 0)
"""

import argparse
import json
import os

import cv2
import numpy as np

DEFAULT_ALPHABET = "0123456789"
# Hershey fonts with a (scale at 32 px height, thickness) that keeps glyphs ~18-22 px tall.
_FONTS = [
    (cv2.FONT_HERSHEY_SIMPLEX, 0.75, 2),
    (cv2.FONT_HERSHEY_DUPLEX, 0.75, 2),
    (cv2.FONT_HERSHEY_COMPLEX, 0.75, 2),
    (cv2.FONT_HERSHEY_TRIPLEX, 0.75, 2),
    (cv2.FONT_HERSHEY_PLAIN, 1.6, 2),
]


# Characters whose glyphs look alike in these fonts: the confusions users report upstream
# (0/O/D, 5/S, 1/l/I: PaddleOCR issues 10287, 6538), for the look-alike demo.
LOOKALIKE_ALPHABET = "0ODQ1Il75S8B2Z6G"


def render_line(text, rng, height=32, width=80, noise=6.0, italic=0.0):
    """One BGR uint8 image (height, width, 3) showing `text`, randomised by `rng`; with
    probability `italic` in the font's italic variant."""
    font, scale, thick = _FONTS[int(rng.integers(len(_FONTS)))]
    if italic and rng.random() < italic:
        font |= cv2.FONT_ITALIC
    scale *= float(rng.uniform(0.85, 1.1)) * height / 32.0
    thick = max(1, int(round(thick * height / 32.0)) - int(rng.integers(0, 2)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    if tw > width - 4:  # shrink to fit
        scale *= (width - 4) / float(tw)
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    bg = int(rng.integers(160, 256))
    fg = int(rng.integers(0, max(1, bg - 100)))
    img = np.full((height, width), bg, np.uint8)
    x = int(rng.integers(1, max(2, width - tw - 1)))
    y_lo, y_hi = th + 1, max(th + 2, height - base)
    y = int(rng.integers(y_lo, y_hi))
    cv2.putText(img, text, (x, y), font, scale, fg, thick, cv2.LINE_AA)
    if noise > 0:
        img = np.clip(img + rng.normal(0.0, noise, img.shape), 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


def _random_label(rng, alphabet, min_len, max_len):
    n = int(rng.integers(min_len, max_len + 1))
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), n))


def make_dataset(
    out_dir,
    n_train=1000,
    n_val=200,
    seed=0,
    alphabet=DEFAULT_ALPHABET,
    min_len=1,
    max_len=3,
    height=32,
    width=80,
    noise=6.0,
    italic=0.0,
    val_seed=None,
):
    """Write the dataset under out_dir and return a dict of paths. The val lines come from
    the train lines' random stream, or from their own with val_seed.

    Keys: data_dir, dict, train_list, val_list (absolute paths). These map to the config
    overrides Global.character_dict_path, {Train,Eval}.dataset.data_dir and
    {Train,Eval}.dataset.label_file_list.
    """
    if not alphabet or len(set(alphabet)) != len(alphabet) or " " in alphabet:
        raise ValueError("alphabet must be non-empty, without duplicates or spaces")
    if not 1 <= min_len <= max_len:
        raise ValueError("need 1 <= min_len <= max_len")
    out_dir = os.path.abspath(out_dir)
    rng = np.random.default_rng(seed)
    paths = {"data_dir": out_dir}
    for split, n in (("train", n_train), ("val", n_val)):
        if split == "val" and val_seed is not None:
            rng = np.random.default_rng(val_seed)
        os.makedirs(os.path.join(out_dir, split), exist_ok=True)
        lines = []
        for i in range(n):
            label = _random_label(rng, alphabet, min_len, max_len)
            rel = "%s/%05d.png" % (split, i)
            img = render_line(label, rng, height, width, noise, italic)
            cv2.imwrite(os.path.join(out_dir, rel), img)
            lines.append("%s\t%s\n" % (rel, label))
        paths[split + "_list"] = os.path.join(out_dir, split + "_list.txt")
        with open(paths[split + "_list"], "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)
    paths["dict"] = os.path.join(out_dir, "dict.txt")
    with open(paths["dict"], "w", encoding="utf-8", newline="\n") as f:
        f.writelines(c + "\n" for c in alphabet)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description="Synthetic PaddleOCR rec dataset (digits).")
    p.add_argument("out_dir")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alphabet", default=DEFAULT_ALPHABET)
    p.add_argument("--min-len", type=int, default=1)
    p.add_argument("--max-len", type=int, default=3)
    p.add_argument("--height", type=int, default=32)
    p.add_argument("--width", type=int, default=80)
    p.add_argument("--noise", type=float, default=6.0)
    p.add_argument("--italic", type=float, default=0.0, help="share of lines in an italic font")
    p.add_argument("--val-seed", type=int, default=None)
    a = p.parse_args(argv)
    paths = make_dataset(
        a.out_dir, a.n_train, a.n_val, a.seed, a.alphabet, a.min_len, a.max_len,
        a.height, a.width, a.noise, a.italic, a.val_seed,
    )
    print(json.dumps(paths, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
