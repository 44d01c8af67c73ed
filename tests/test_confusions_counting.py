"""Issue 18, the pure parts of `make confusions` (no Paddle): the counts of the alignment
against an independent dynamic-programming Levenshtein, the statistics of BASELINE= against
exact formulas and an independent bootstrap, the summary, table and comparison."""

import collections
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from centerkit import confusions, paired_stats
from conftest import NEWEST

TEXT = st.text(alphabet="ab01O ", max_size=12)


def dp_distance(a, b):
    """Levenshtein distance by the textbook Wagner-Fischer table (unit costs)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), max_size=5))
def test_counts_are_an_optimal_edit_script(pairs):
    c = confusions.count(pairs)
    subs, dels, ins = sum(c.substitutions.values()), sum(c.deletions.values()), sum(c.insertions.values())
    assert c.distances == [dp_distance(l, p) for l, p in pairs]
    assert subs + dels + ins == sum(c.distances)
    assert c.label_chars == [len(l) for l, _ in pairs]
    labels = collections.Counter("".join(l for l, _ in pairs))
    predictions = collections.Counter("".join(p for _, p in pairs))
    assert c.occurrences == labels
    # every label character is read right, substituted or deleted ...
    from_label = collections.Counter()
    to_prediction = collections.Counter()
    for (l, p), n in c.substitutions.items():
        assert l != p
        from_label[l] += n
        to_prediction[p] += n
    for ch, n in labels.items():
        assert c.correct[ch] + from_label[ch] + c.deletions[ch] == n
    # ... and the prediction is what is read right, substituted to, or inserted
    assert c.correct + to_prediction + c.insertions == predictions


def test_the_alignment_taken_where_several_are_optimal():
    """The documented choice (module doc of centerkit.confusions)."""
    assert confusions.edit_ops("0O", "O0") == [("insert", 0, 0), ("delete", 1, 2)]
    assert confusions.edit_ops("aa", "a") == [("delete", 1, 1)]
    c = confusions.count([("0O", "O0")])
    assert not c.substitutions and c.insertions == {"O": 1} and c.deletions == {"O": 1}


def test_characters_shown_visibly():
    assert confusions.shown("a") == "a" and confusions.shown("未") == "未"
    assert confusions.shown(" ") == "\u2423"
    assert confusions.shown("\u200b") == "U+200B" and confusions.shown("\t") == "U+0009"
    assert confusions.shown("\u0301") == "U+0301"  # a combining accent alone


def exact_mcnemar(b, c):
    """Two-sided exact McNemar p from the binomial coefficients: 2 P(X <= min(b, c)), X ~ Bin(b+c, 1/2)."""
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n)


@pytest.mark.parametrize("lost, gained, same", [(2, 9, 30), (0, 5, 1), (7, 7, 3), (12, 3, 40), (0, 0, 10)])
def test_mcnemar_on_known_tables(lost, gained, same):
    before = [True] * lost + [False] * gained + [True] * same + [False] * 4
    after = [False] * lost + [True] * gained + [True] * same + [False] * 4
    got_lost, got_gained, p = paired_stats.mcnemar_exact(before, after)
    assert (got_lost, got_gained) == (lost, gained)
    assert p == pytest.approx(exact_mcnemar(lost, gained), rel=1e-12)


def test_mcnemar_known_value():
    assert paired_stats.mcnemar_exact([1] * 2 + [0] * 9, [0] * 2 + [1] * 9)[2] == pytest.approx(134 / 2048)


def independent_bootstrap(before, after, chars, resamples, seed):
    rng = np.random.default_rng(seed + 1)  # another stream than the kit's
    idx = rng.integers(0, len(chars), (resamples, len(chars)))
    stat = (after[idx].sum(1) - before[idx].sum(1)) / chars[idx].sum(1)
    return np.percentile(stat, [2.5, 97.5])


def test_bootstrap_against_an_independent_resampling():
    rng = np.random.default_rng(3)
    chars = rng.integers(3, 12, 300).astype(float)
    before = rng.binomial(chars.astype(int), 0.2).astype(float)
    after = np.maximum(before - rng.integers(0, 2, 300), 0)
    change, low, high = paired_stats.cer_change_interval(before, after, chars)
    assert change == pytest.approx((after.sum() - before.sum()) / chars.sum())
    ref_low, ref_high = independent_bootstrap(before, after, chars, 20000, 0)
    assert low == pytest.approx(ref_low, abs=0.003) and high == pytest.approx(ref_high, abs=0.003)
    assert low < change < high < 0
    assert paired_stats.cer_change_interval(before, after, chars) == (change, low, high)  # seeded


def test_bootstrap_without_a_change_is_exactly_zero():
    edits = [1, 0, 2]
    assert paired_stats.cer_change_interval(edits, edits, [3, 4, 5]) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("acc, p, low, high, word", [
    (0.1, 0.01, -0.05, -0.01, "better"), (-0.1, 0.01, 0.01, 0.05, "worse"),
    (0.1, 0.2, -0.05, 0.01, "no significant change"), (0.0, 1.0, -0.02, -0.01, "better"),
    (0.1, 0.01, 0.01, 0.02, "mixed")])
def test_verdict(acc, p, low, high, word):
    assert paired_stats.verdict(acc, p, low, high).startswith(word)


def recognised(pairs, dictionary="blank 0 1 2 7 O".split(), correct=None):
    lines = [dict(image="img/%d.png" % i, label=l, prediction=p, correct=(l == p) if correct is None else correct[i],
                  compared=[l, p]) for i, (l, p) in enumerate(pairs)]
    right = sum(x["correct"] for x in lines)
    return dict(lines=lines, line_accuracy=right / (len(lines) + 1e-5), dictionary=dictionary,
                metric=dict(name="RecMetric", is_filter=False, ignore_space=True), model=None, weights="w",
                weights_source="CHECKPOINT", engine="dygraph", release=NEWEST, data="eval", seconds=0.1)


FILES = [dict(path="/d/val.txt", sha256="ab" * 32, lines=6)]


def test_summary_and_table():
    rec = recognised([("0", "O"), ("00", "0O"), ("17", "11"), ("7", "1"), ("x1", "1"), ("2", "2")])
    s = confusions.summarize(rec, FILES)
    assert s["lines"] == 6 and s["label_chars"] == 9
    assert s["edits"] == dict(substitutions=4, deletions=1, insertions=0)
    assert s["char_error_rate"] == pytest.approx(5 / 9)
    assert [(p["label_char"], p["predicted_char"], p["count"]) for p in s["pairs"]] == [("0", "O", 2), ("7", "1", 2)]
    assert s["pairs"][0]["share"] == pytest.approx(2 / 3) and s["pairs"][0]["label_index"] == 1
    assert s["characters"]["0"] == dict(index=1, occurrences=3, correct=1, recall=1 / 3, deleted=0)
    assert s["label_chars_outside_dictionary"] == {"x": 1}
    table = confusions.format_table(s)
    assert "not in the dictionary (never predicted): x x1" in table
    rows = [l.split() for l in table.splitlines()[-2:]]
    assert rows == [["0", "1", "O", "5", "2", "66.7%"], ["7", "4", "1", "2", "2", "100.0%"]]
    png = confusions.matrix_png(s)
    assert png.startswith(b"\x89PNG")
    assert confusions.lines_tsv(rec, s["per_line"]["edits"]).decode().splitlines()[4] == "img/4.png\tx1\t1\t1"


def test_center_distance_and_rank():
    rec = recognised([("0", "O"), ("7", "1")])
    centers = {0: np.zeros(2), 1: np.array([0.0, 0.0]), 2: np.array([3.0, 0.0]), 3: np.array([1.0, 0.0]),
               4: np.array([0.0, 2.0]), 5: np.array([0.0, 6.0])}  # blank, 0, 1, 2, 7, O
    s = confusions.summarize(rec, FILES, centers)
    by = {(p["label_char"], p["predicted_char"]): p for p in s["pairs"]}
    assert by["0", "O"]["center_distance"] == pytest.approx(6.0) and by["0", "O"]["center_rank"] == 4  # 2, 7, 1 nearer
    assert by["7", "1"]["center_distance"] == pytest.approx(math.hypot(3, 2)) and by["7", "1"]["center_rank"] == 3  # 0, 2 nearer
    assert "center dist" in confusions.format_table(s)
    del centers[5]
    assert confusions.summarize(rec, FILES, centers)["pairs"][0]["center_rank"] is None


def test_comparison_and_same_lines():
    before = confusions.summarize(recognised([("0", "O")] * 30 + [("1", "1")] * 10), [dict(FILES[0], lines=40)])
    after = confusions.summarize(recognised([("0", "O")] * 5 + [("0", "0")] * 25 + [("1", "1")] * 10),
                                 [dict(FILES[0], lines=40)])
    assert confusions.same_lines(before, after["label_files"]) is None
    other = [dict(FILES[0], sha256="cd" * 32, lines=40)]
    assert "BASELINE read other lines" in confusions.same_lines(before, other)
    text, stats = confusions.compare(before, after)
    assert stats["mcnemar"] == dict(lines_lost=0, lines_gained=25, p_value=pytest.approx(2 / 2 ** 25))
    assert "0 -> O" in text and "30 -> 5" in text
    assert text.splitlines()[-1] == "verdict: better (significant at 5%)"


def test_holm_known_values():
    # Holm (1979) step-down: sorted p times (m - rank), made monotone, capped at 1
    assert paired_stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert paired_stats.holm([0.5]) == [0.5]
    assert paired_stats.holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])


def test_detectable_change_is_what_mcnemar_detects_with_80_percent_power():
    """The change it names is detected in ~80% of simulated paired runs with that
    discordance (exact McNemar at 5%), a third of it far less often."""
    pairs, discordant = 800, 120
    mde = paired_stats.detectable_change(pairs, discordant)
    assert paired_stats.detectable_change(pairs, 0) is None
    assert paired_stats.detectable_change(4 * pairs, 4 * discordant) == pytest.approx(mde / 2)
    rng = np.random.default_rng(0)

    def power(delta, trials=400):
        share = discordant / pairs  # p(lost) + p(gained); their difference is delta
        gained = rng.binomial(pairs, (share + delta) / 2, trials)
        lost = rng.binomial(pairs, (share - delta) / 2, trials)
        hits = [paired_stats.mcnemar_exact([1] * l + [0] * g, [0] * l + [1] * g)[2] < 0.05 for l, g in zip(lost, gained)]
        return np.mean(hits)

    assert 0.7 < power(mde) < 0.9
    assert power(mde / 3) < 0.3


def test_ab_corrects_both_measures_for_the_number_of_center_arms():
    """With two center weights, McNemar's p is Holm-adjusted and the CER interval is a
    Bonferroni one (97.5%): wider than the 95% one, so the CER alone cannot call a change
    the correction of the other measure would not."""
    from centerkit import ab

    rng = np.random.default_rng(1)
    chars = rng.integers(3, 9, 200)

    def run(error_rate):
        edits = rng.binomial(chars, error_rate)
        return {"per_line": {"correct": (edits == 0).tolist(), "edits": edits.tolist(), "label_chars": chars.tolist()},
                "line_accuracy": float(np.mean(edits == 0)), "char_error_rate": float(edits.sum() / chars.sum())}

    loaded = {"control": [run(0.10) for _ in range(3)], "center-0.01": [run(0.09) for _ in range(3)],
              "center-0.05": [run(0.08) for _ in range(3)]}
    out = ab.compare_all(loaded)
    stacked = lambda arm, key: np.concatenate([r["per_line"][key] for r in loaded[arm]])  # noqa: E731
    ps = [out[arm]["pooled"]["mcnemar"]["p_value"] for arm in ("center-0.01", "center-0.05")]
    for arm, p_holm in zip(("center-0.01", "center-0.05"), paired_stats.holm(ps)):
        got = out[arm]["pooled"]
        assert got["mcnemar"]["p_holm"] == p_holm and got["cer_change"]["confidence"] == pytest.approx(0.975)
        args = stacked("control", "edits"), stacked(arm, "edits"), stacked(arm, "label_chars")
        assert (got["cer_change"]["low"], got["cer_change"]["high"]) == \
            paired_stats.cer_change_interval(*args, confidence=0.975)[1:]
        _, low95, high95 = paired_stats.cer_change_interval(*args)
        assert got["cer_change"]["low"] < low95 and got["cer_change"]["high"] > high95
    single = ab.compare_all({"control": loaded["control"], "center": loaded["center-0.05"]})
    assert single["center"]["pooled"]["cer_change"]["confidence"] == pytest.approx(0.95)
