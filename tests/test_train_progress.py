"""The progress line of a training run, read from tools/program.py's own train.log."""

import io
import time

from centerkit import train_progress

# program.py's lines as v2.7 and v3.7 write them (v3.x appends max_mem fields after eta)
V27 = ("[2026/12/02 08:00:01] ppocr INFO: epoch: [2/12], global_step: 40, lr: 0.001000, loss: 12.345678, "
       "loss_ctc: 3.2, avg_reader_cost: 0.01 s, avg_batch_cost: 0.2 s, avg_samples: 16.0, ips: 80.0 samples/s, eta: 0:03:20\n")
V37 = ("[2026/12/02 08:00:05] ppocr INFO: epoch: [3/12], global_step: 60, lr: 0.001000, loss: 9.876500, "
       "avg_reader_cost: 0.01 s, avg_batch_cost: 0.2 s, avg_samples: 16.0, ips: 80.0 samples/s, eta: 1 day, 0:02:10, max_mem_reserved: 0 B\n")


def test_last_step_line_wins(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("config dump: loss: 1\n" + V27 + "eval line\n" + V37)
    assert train_progress.last_step(str(log)) == (3, 12, 60, "9.876500", "1 day, 0:02:10")
    assert train_progress.last_step(str(tmp_path / "none")) is None


def test_an_earlier_runs_lines_are_not_this_runs(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(V27)
    since = log.stat().st_size
    line = train_progress.progress_line("make train", str(log), 31, since)
    assert line.startswith("make train: starting") and "0:00:31 elapsed" in line and str(log) in line
    with open(log, "a") as f:
        f.write(V37)
    line = train_progress.progress_line("make train", str(log), 95, since)
    assert "epoch 3/12, step 60, loss 9.876500, ETA 1 day, 0:02:10, 0:01:35 elapsed" in line


def test_reporting_prints_while_the_block_runs_and_at_its_end(tmp_path):
    log = tmp_path / "train.log"
    out = io.StringIO()
    with train_progress.reporting("training", str(log), interval=0.05, out=out):
        time.sleep(0.12)
        log.write_text(V27)
        time.sleep(0.12)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and lines[0].startswith("training: starting")
    assert "epoch 2/12, step 40, loss 12.345678, ETA 0:03:20" in lines[-1]
