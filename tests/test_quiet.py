"""centerkit.quiet's filter of the children's output, fed as a pipe delivers it."""

from centerkit import quiet


def shown(*chunks):
    f = quiet.Filter()
    return [f.feed(c) for c in chunks] + [f.close()]


def test_known_noise_is_dropped_and_the_rest_shown_as_it_comes():
    out = shown(b"epoch 1\n", b"/p/extension_utils.py:712: UserWarning: No ccache found. Please ...\n"
                b"  warnings.warn(warning_message)\n",
                b"Skipping import of the encryption module.", b"\n",  # print's two writes
                b"W1202 eager_utils.cc:3584] Paddle static graph(PIR) not support input out tensor for now!!!!!\n",
                b"\rexport centers:  10%", b"\rexport centers:  20%", b"\n", b"  warnings.warn(warning_message)\n")
    assert out == [b"epoch 1\n", b"", b"", b"", b"", b"\rexport centers:  10%", b"\rexport centers:  20%", b"\n",
                   b"  warnings.warn(warning_message)\n", b""]  # a bar at once; that line alone is not noise


def test_a_keyboard_interrupt_traceback_is_dropped_any_other_shown():
    interrupted = (b"Traceback (most recent call last):\n  File \"tools/train.py\", line 9\n    main()\n"
                   b"KeyboardInterrupt\n\nDuring handling of the above exception, another exception occurred:\n\n"
                   b"Traceback (most recent call last):\n  File \"w.py\", line 3\nKeyboardInterrupt\n")
    failed = b"Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: bad\n"
    assert b"".join(shown(interrupted[:40], interrupted[40:], b"done\n")) == b"done\n"
    assert b"".join(shown(failed[:30], failed[30:])) == failed
    assert b"".join(shown(failed[:45])) == failed[:45]  # cut short: shown as it is


def relayed(data):
    import io
    import os

    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    out = io.BytesIO()
    quiet._relay(os.fdopen(read, "rb"), out)
    return out.getvalue()


def test_a_line_cut_short_by_the_childs_death_is_ended_for_the_kits_next_line():
    assert relayed(b"\rexport centers:   0%| 0/3") == b"\rexport centers:   0%| 0/3\n"
    assert relayed(b"done\n") == b"done\n" and relayed(b"") == b""
