"""Before/after statistics on the same lines (`make confusions BASELINE=`): McNemar's exact
test on the lines each model reads right or wrong, a seeded paired bootstrap interval of
the character error rate's change, and the verdict both give. scipy.stats does the math."""

import numpy as np

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 0  # the interval is the same on every run of the same two files


def mcnemar_exact(before_right, after_right):
    """(lines right before only, right after only, two-sided p) of McNemar's exact test: the
    discordant lines as a binomial with p = 1/2 (scipy.stats.binomtest); p = 1 without any."""
    from scipy.stats import binomtest

    before, after = np.asarray(before_right, bool), np.asarray(after_right, bool)
    lost, gained = int(np.sum(before & ~after)), int(np.sum(~before & after))
    if lost + gained == 0:
        return lost, gained, 1.0
    return lost, gained, float(binomtest(gained, lost + gained, 0.5).pvalue)


def cer_change_interval(before_edits, after_edits, label_chars, seed=BOOTSTRAP_SEED, resamples=BOOTSTRAP_RESAMPLES,
                        confidence=1 - ALPHA):
    """(change, low, high): the character error rate after minus before, with a percentile
    bootstrap interval (95%, or `confidence`) over lines resampled in pairs
    (scipy.stats.bootstrap, seeded). Lines are the unit, not characters: a line's errors are
    not independent."""
    from scipy.stats import bootstrap

    before, after, chars = (np.asarray(v, np.float64) for v in (before_edits, after_edits, label_chars))
    change = float(cer_change(before, after, chars))
    if len(chars) < 2 or np.all(after - before == 0):  # nothing to resample: the change is exact
        return change, change, change
    options = dict(paired=True, vectorized=True, n_resamples=resamples, confidence_level=confidence, method="percentile")
    try:
        res = bootstrap((before, after, chars), cer_change, rng=np.random.default_rng(seed), **options)
    except TypeError:  # scipy < 1.15 (Paddle 2.6's environment) names it random_state
        res = bootstrap((before, after, chars), cer_change, random_state=np.random.default_rng(seed), **options)
    return change, float(res.confidence_interval.low), float(res.confidence_interval.high)


def cer_change(before, after, chars, axis=-1):
    """CER after minus CER before of lines (edits before, edits after, label characters)."""
    total = np.maximum(np.sum(chars, axis=axis), 1)
    return (np.sum(after, axis=axis) - np.sum(before, axis=axis)) / total


def holm(p_values):
    """Holm's step-down adjustment of p-values for their number of comparisons (in order)."""
    order = np.argsort(p_values, kind="stable")
    m, adjusted, running = len(p_values), [None] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def detectable_change(pairs, discordant, alpha=ALPHA, power=0.8):
    """The smallest change of line accuracy that McNemar's test on `pairs` paired lines,
    `discordant` of them right in one arm only, detects at alpha with that power (the normal
    approximation: (z_{1-alpha/2} + z_power) * sqrt(discordant share / pairs)); None when
    no line differed (no discordance measured)."""
    from scipy.stats import norm

    if not pairs or not discordant:
        return None
    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * np.sqrt(discordant / pairs / pairs))


def verdict(accuracy_change, p_value, cer_low, cer_high):
    """better / worse / no significant change at 5%: line accuracy by McNemar, CER by its
    interval (below zero is better); mixed when the two significant results disagree."""
    votes = set()
    if p_value < ALPHA and accuracy_change:
        votes.add("better" if accuracy_change > 0 else "worse")
    if cer_high < 0:
        votes.add("better")
    elif cer_low > 0:
        votes.add("worse")
    if not votes:
        return "no significant change at 5%"
    if len(votes) == 2:
        return "mixed: line accuracy and CER changed in opposite directions (significant at 5%)"
    return "%s (significant at 5%%)" % votes.pop()
