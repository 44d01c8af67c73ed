"""Bad input: one line naming the fix, exit code 2, and the tree and user files unchanged.
The tree is the real sdist (tools/, ppocr/) of the newest release that has one, the user's files are made here."""

import errno
import importlib.util
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import types

import numpy as np
import pytest
import yaml

import upstream
from conftest import NEWEST, SDIST_RELEASES, TABLE, first_of
from kit_run import KIT, error_lines, git_status, make, recipe_exit, snapshot
from centerkit import LOSS_SOURCE, KitError, kit_requirements, patchfile
from centerkit.dropins import kit_export
from centerkit.patch_queue import PatchQueue, read_manifest
from centerkit.tree import TreeLock


def base_config(data):
    return {
        "Global": {"use_gpu": False, "character_dict_path": str(data / "dict.txt"),
                   "checkpoints": str(data / "ckpt" / "best_accuracy"), "use_space_char": False},
        "Architecture": {"model_type": "rec", "algorithm": "CRNN",
                         "Backbone": {"name": "MobileNetV3"}, "Neck": {"name": "SequenceEncoder"},
                         "Head": {"name": "CTCHead"}},
        "Loss": {"name": "CTCLoss"},
        "PostProcess": {"name": "CTCLabelDecode"},
        "Train": {"dataset": {"name": "SimpleDataSet", "data_dir": str(data),
                              "label_file_list": [str(data / "train.txt")]}},
        "Eval": {"dataset": {"name": "SimpleDataSet", "data_dir": str(data),
                             "label_file_list": [str(data / "train.txt")]}, "loader": {}},
    }


def distill_config(data):
    cfg = base_config(data)
    single = cfg["Architecture"]
    cfg["Architecture"] = {"model_type": "rec", "name": "DistillationModel", "algorithm": "Distillation",
                           "Models": {"Teacher": dict(single), "Student": dict(single)}}
    return cfg


def user_files(data):
    (data / "img").mkdir(parents=True)
    (data / "ckpt").mkdir()
    (data / "ckpt" / "best_accuracy.pdparams").write_bytes(b"weights")
    (data / "img" / "0.png").write_bytes(b"png")
    (data / "train.txt").write_text("img/0.png\t1\n")
    (data / "dict.txt").write_text("1\n2\n")
    return data


@pytest.fixture
def env(tmp_path):
    tree = upstream.sdist_tree(SDIST_RELEASES[-1], str(tmp_path / "src"))
    return tree, user_files(tmp_path / "user")


def write(data, cfg, name="cfg.yml"):
    path = data / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def assert_refused(result, *needles, before=None, roots=()):
    lines = error_lines(result)
    assert recipe_exit(result) == 2, result.stderr  # the kit's own code, not just make's
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    if before is not None:
        assert [snapshot(r) for r in roots] == before
    return lines[0]


def write_centers(path):
    """A pkl in CenterLoss's format (make train checks CENTERS= is one before anything else)."""
    with open(path, "wb") as f:
        pickle.dump({1: np.zeros(8, np.float32)}, f)


def run_export(tree, data, cfg_path, **extra):
    roots = (tree, str(data))
    before = [snapshot(r) for r in roots]
    result = make("export", cwd=tree, CONFIG=cfg_path, OUTPUT=str(data / "out.pkl"), **extra)
    return result, before, roots


CASES = {
    "missing config": (lambda d: str(d / "nope.yml"), {}, ["does not exist", "CONFIG="]),
    "not yaml": (lambda d: (d / "bad.yml").write_text("a: [b\n") and str(d / "bad.yml"), {}, ["YAML"]),
    "not a rec model": (lambda d: write(d, dict(base_config(d), Architecture=dict(base_config(d)["Architecture"], model_type="det"))), {}, ["model_type", "'rec'"]),
    "no CTC head": (lambda d: write(d, dict(base_config(d), Architecture=dict(base_config(d)["Architecture"], Head={"name": "AttentionHead"}))), {}, ["AttentionHead", "CTC"]),
    "unknown MODEL": (lambda d: write(d, distill_config(d)), {"MODEL": "Pupil"}, ["Pupil", "choose one of", "Teacher", "Student"]),
    # as make train refuses it (test_train_configs): a MODEL= the export would silently ignore
    "MODEL on a single model": (lambda d: write(d, base_config(d)), {"MODEL": "Student"}, ["not a Distillation model", "drop MODEL="]),
    "missing checkpoint": (lambda d: write(d, base_config(d)), {"CHECKPOINT": "/nonexistent/best"}, ["/nonexistent/best.pdparams", "CHECKPOINT="]),
    "missing dictionary": (lambda d: (d / "dict.txt").unlink() or write(d, base_config(d)), {}, ["dict.txt", "character_dict_path"]),
    "empty label file": (lambda d: (d / "train.txt").write_text("\n") and write(d, base_config(d)), {}, ["empty"]),
    "malformed label file": (lambda d: (d / "train.txt").write_text("img/0.png 1\n") and write(d, base_config(d)), {}, ["train.txt:1", "'\\t'"]),
    "missing image": (lambda d: (d / "train.txt").write_text("img/9.png\t1\n") and write(d, base_config(d)), {}, ["img/9.png"]),
    "bad NPROC": (lambda d: write(d, base_config(d)), {"NPROC": "two"}, ["NPROC=two", "NPROC=2"]),
    "output exists": (lambda d: (d / "out.pkl").write_bytes(b"mine") and write(d, base_config(d)), {}, ["out.pkl exists", "FORCE=1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_changes_nothing(env, case):
    tree, data = env
    make_cfg, variables, needles = CASES[case]
    cfg_path = make_cfg(data)
    result, before, roots = run_export(tree, data, cfg_path, **variables)
    assert_refused(result, *needles, before=before, roots=roots)


def test_not_a_paddleocr_clone(env, tmp_path):
    tree, data = env
    cfg = write(data, base_config(data))
    before = [snapshot(str(data))]
    result = make("export", cwd=str(data), CONFIG=cfg)
    assert_refused(result, "not inside a PaddleOCR clone", "PADDLEOCR=", before=before, roots=[str(data)])


@pytest.mark.parametrize("target", ["export", "check", "apply", "revert", "status"])
def test_paddleocr_names_a_folder_that_is_not_a_clone(env, tmp_path, target):
    """PADDLEOCR=<some other folder>: refused before anything in it or the user's files moves."""
    tree, data = env
    other = tmp_path / "not-a-clone"
    (other / "tools").mkdir(parents=True)  # half a tree: no export_center.py, no ppocr/
    (other / "notes.txt").write_text("mine\n")
    cfg = write(data, base_config(data))
    roots = (str(other), str(data))
    before = [snapshot(r) for r in roots]
    variables = dict(CONFIG=cfg, OUTPUT=str(data / "out.pkl")) if target == "export" else {}
    result = make(target, cwd=str(data), PADDLEOCR=str(other), **variables)
    assert_refused(result, "%s is not a PaddleOCR tree" % other, "PADDLEOCR=", before=before, roots=roots)


def without_write_override():
    """A command prefix under which chmod -w stops writes, as it does for a user: none for a
    normal user; for root, whom mode bits do not stop, setpriv dropping CAP_DAC_OVERRIDE;
    else a skip naming why (then nothing here could show a read-only clone)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root, where chmod -w does not stop writes, and no setpriv to drop CAP_DAC_OVERRIDE")
    wrap = [setpriv, "--bounding-set", "-dac_override"]
    with tempfile.TemporaryDirectory() as folder:
        probe = os.path.join(folder, "read-only")
        with open(probe, "w"):
            pass
        os.chmod(probe, 0o444)
        ok = subprocess.run(wrap + ["true"], capture_output=True, text=True)
        wrote = subprocess.run(wrap + ["sh", "-c", 'echo x >> "$0"', probe], capture_output=True)
    if ok.returncode or wrote.returncode == 0:
        pytest.skip("running as root and setpriv cannot drop CAP_DAC_OVERRIDE here (%s)" % ok.stderr.strip())
    return wrap


@pytest.mark.parametrize("what", ["file", "folder"])
def test_read_only_clone_is_refused_before_patching(env, what):
    """The file to patch read-only, or its folder (git apply and the byte-exact restore
    replace files): refused before anything is saved or patched, not stopped halfway."""
    tree, data = env
    wrap = without_write_override()
    for folder, dirs, files in os.walk(tree if os.geteuid() == 0 else ()):
        for name in [folder] + [os.path.join(folder, f) for f in files]:  # root extracted the
            os.chown(name, 0, 0)  # sdist with its packager's uid; a clone is its user's own
    target = os.path.join(tree, "tools", "export_center.py")
    path = target if what == "file" else os.path.dirname(target)
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        cfg = write(data, base_config(data))
        roots = (tree, str(data))
        before = [snapshot(r) for r in roots]
        result = make("export", cwd=tree, wrap=wrap, CONFIG=cfg, OUTPUT=str(data / "out.pkl"))
        assert_refused(result, "%s is read-only" % path, "chmod u+w", before=before, roots=roots)
        assert read_manifest(tree) is None and not os.path.exists(os.path.join(tree, ".ppocr-center-kit"))
    finally:
        os.chmod(path, mode)


@pytest.mark.parametrize("rel", ["tools/export_center.py", "ppocr/modeling/heads"])
def test_read_only_clone_tier(clone_source, tmp_path, rel):
    """The same in a whole clone of the newest release, where the series applies: with the second file's
    folder read-only a run would otherwise stop between the two files it patches."""
    wrap = without_write_override()
    tree = upstream.release_tree(clone_source, NEWEST)
    if tree is None:
        pytest.skip("%s has neither tag %s nor the commit the shared table gives" % (clone_source, NEWEST))
    data = user_files(tmp_path / "user")
    cfg = write(data, base_config(data))
    path = os.path.join(tree, rel)
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        roots = (tree, str(data))
        before = [snapshot(r) for r in roots]
        result = make("export", cwd=tree, wrap=wrap, env={"PADDLEOCR_VERSION": NEWEST}, CONFIG=cfg,
                      OUTPUT=str(data / "out.pkl"))
        assert_refused(result, "%s is read-only" % path, "chmod u+w", before=before, roots=roots)
        assert read_manifest(tree) is None
        git = subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True, check=True)
        assert git.stdout == ""
    finally:
        os.chmod(path, mode)


def full_disk(monkeypatch, where):
    """Make the output write fail as on a full disk: in the write itself, after half the
    bytes landed, or in fsync (where delayed allocation reports it)."""
    def enospc(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", enospc)
        return
    real_fdopen = os.fdopen

    class HalfWritten:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            self.f.flush()
            enospc()

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: HalfWritten(real_fdopen(fd, *a, **k)))


@pytest.mark.parametrize("existing", [False, True], ids=["new", "over-existing"])
@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_output_write(tmp_path, monkeypatch, where, existing):
    """The export script's output write on a full disk: one line naming the path and the
    fix, no temp file or partial pkl left, an existing output (FORCE=1) untouched."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("the user's\n")
    out = out_dir / "train_center.pkl"
    if existing:
        out.write_bytes(b"previous centers")
        os.chmod(out, 0o640)
    before = snapshot(str(out_dir))
    full_disk(monkeypatch, where)
    with pytest.raises(kit_export.errors.ExportError) as e:
        kit_export.output_files.write_files({str(out): b"c" * 65536}, force=existing)
    monkeypatch.undo()
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("cannot write %s: No space left on device" % out) and "OUTPUT=" in message, message
    assert snapshot(str(out_dir)) == before  # no temp, no partial pkl, the old one as it was


def test_full_disk_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    """Through the export script's main: exit code 2 and one `ppocr-center-kit: error:` line.
    Paddle and ppocr are not needed up to the write: run() is cut down to it."""
    data = tmp_path
    out = data / "centers.pkl"
    logging_mod = types.ModuleType("ppocr.utils.logging")
    logging_mod.get_logger = lambda: None
    for name, mod in (("ppocr", types.ModuleType("ppocr")), ("ppocr.utils", types.ModuleType("ppocr.utils")),
                      ("ppocr.utils.logging", logging_mod)):
        monkeypatch.setitem(sys.modules, name, mod)

    def run_to_the_write(config, logger):
        path, _ = kit_export.config.output_paths(config)
        kit_export.output_files.write_files({path: b"c" * 4096}, bool(config["Export"]["force"]))

    monkeypatch.setattr(kit_export.cli, "run", run_to_the_write)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() puts the script's tree on it
    full_disk(monkeypatch, "fsync")
    rc = kit_export.cli.main(["-c", write(data, base_config(data)), "-o", "Export.output=%s" % out])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("ppocr-center-kit: error: cannot write %s: No space left on device" % out), err
    assert sorted(os.listdir(data)) == ["cfg.yml"]


def test_unknown_release_check_fails(env):
    tree, data = env
    before = snapshot(tree)
    unlisted = "v9.1.0"  # no release: a version the table does not list
    result = make("check", cwd=tree, env={"PADDLEOCR_VERSION": unlisted})
    # an sdist tree has no ppocr/modeling: no series applies, the first candidate's (the newest series) conflict is named
    line = assert_refused(result, "PaddleOCR %s is not in the release table and no patch series applies cleanly"
                          % unlisted, "PADDLEOCR_VERSION")
    assert "(%s: " % TABLE[-1].series in line and "rec_ctc_head.py" in line
    assert snapshot(tree) == before


def test_local_edits_that_conflict_are_refused_and_kept(env):
    """The export patch on the real file (the newest sdist's) with a user's edit in it: refused, kept."""
    tree, _ = env
    target = os.path.join(tree, "tools", "export_center.py")
    with open(target) as f:
        edited_line = len(f.read().splitlines()) + 1
    with open(target, "a") as f:
        f.write("# my local edit\n")
    before = snapshot(tree)
    q = PatchQueue(tree, SDIST_RELEASES[-1].series)
    q.patches = [p for p in q.patches if patchfile.targets(p) == [patchfile.EXPORT_TARGET]]
    assert len(q.patches) == 1
    with pytest.raises(KitError) as e:
        q.apply(SDIST_RELEASES[-1].name)
    # the sdist tree is no git repository: no git advice, upstream's file is the way back
    assert "do not apply" in str(e.value) and "restore upstream's tools/export_center.py" in str(e.value)
    assert "fails at line %d, which is '# my local edit'" % edited_line in str(e.value) and "git" not in str(e.value)
    assert snapshot(tree) == before
    assert read_manifest(tree) is None


def test_status_and_check_during_a_live_run(env, tmp_path):
    """While another run holds the tree, status says so (not "open run: revert it") and
    check refuses with one line, also from a shell with another TMPDIR; nothing is touched."""
    tree, data = env
    before = [snapshot(tree)]
    with TreeLock(tree):
        status = make("status", cwd=tree)
        check = make("check", cwd=tree, env={"TMPDIR": str(tmp_path)})
    assert status.returncode != 0 and "RUN IN PROGRESS" in status.stdout, status.stdout
    assert_refused(check, "another ppocr-center-kit run", "wait", before=before, roots=[tree])


def test_demo_refuses_an_unknown_release_before_training(env):
    """make demo checks the clone first: an unsupported release is one line before the data
    is rendered or anything trained, and neither the clone nor demo-output changes."""
    installed = os.path.join(KIT, ".venv", ".installed")
    reqs = [os.path.join(KIT, n) for n in ("requirements.txt", "requirements-dev.txt")]
    if not os.path.exists(installed) or any(os.path.getmtime(r) > os.path.getmtime(installed) for r in reqs):
        pytest.skip("make demo would first (re)build the kit's .venv: run `make setup`")
    tree, _ = env
    out = os.path.join(KIT, "demo-output")
    roots = [tree] + ([out] if os.path.isdir(out) else [])
    before = [snapshot(r) for r in roots]
    unlisted = "v1.0.0"  # no release: older than every one the table lists
    result = make("demo", cwd=tree, env={"PADDLEOCR_VERSION": unlisted}, PADDLEOCR=tree)
    assert_refused(result, unlisted, "PADDLEOCR_VERSION", before=before, roots=roots)
    assert os.path.isdir(out) == (len(roots) == 2)


def test_preflight_reads_a_bounded_sample_of_a_label_file(tmp_path):
    """The preflight's cost does not grow with the data set: it reads SAMPLE_LINES lines of
    a label file, whatever its length; http(s):// images (v3.x downloads them) pass."""
    from centerkit import preflight

    path = tmp_path / "big.txt"
    path.write_text("".join("img/%d.png\t%d\n" % (i, i) for i in range(200000)))
    sample = preflight.sample_lines(str(path))
    assert len(sample) == preflight.SAMPLE_LINES
    assert sample[0] == (":1", b"img/0.png\t0\n") and sample[-1][1].startswith(b"img/19")
    assert all(line.endswith(b"\n") and line.count(b"\t") == 1 for _, line in sample)  # whole lines
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "0.png").write_bytes(b"")
    remote = tmp_path / "remote.txt"
    remote.write_text("img/0.png\ta\nhttps://example.invalid/x.png\tb\nhttp://example.invalid/y.png\tc\n")
    preflight.check_data(str(tmp_path), {"data_dir": str(tmp_path), "label_file_list": [str(remote)]})
    with pytest.raises(KitError) as e:
        preflight.check_data(str(tmp_path), {"data_dir": str(tmp_path), "label_file_list": [str(path)]})
    assert "big.txt:2 names image img/1.png, missing under" in str(e.value)


def venv_with(folder, modules=()):
    """A Python without pip or any package (a fresh venv of this one's interpreter), with
    only `modules` of this Python linked into it: a user's PYTHON that lacks the rest."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    for module in modules:
        spec = importlib.util.find_spec(module)
        source = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
        for path in (source, source + ".libs"):  # numpy's bundled libraries beside it
            if os.path.exists(path):
                os.symlink(path, os.path.join(site, os.path.basename(path)))
    return str(python)


# every module of the kit's requirements.txt, and gitpython's own imports
KIT_MODULES = tuple(module for module, _ in kit_requirements()) + ("gitdb", "smmap")


@pytest.mark.parametrize("target, lacking", [("status", ()), ("export", ()), ("confusions", ("matplotlib",))])
def test_python_without_the_kits_modules(env, tmp_path, target, lacking):
    """PYTHON= without the kit's requirements (none, or all but matplotlib, which make
    confusions imports only after recognising every line): one line naming the pip command,
    before any release detection (which would misread the release without gitpython)."""
    tree, data = env
    python = venv_with(tmp_path / "bare", [m for m in KIT_MODULES if m not in lacking] if lacking else ())
    variables = dict(CONFIG=write(data, base_config(data)), OUTPUT=str(data / "out.pkl")) if target != "status" else {}
    roots = (tree, str(data))
    before = [snapshot(r) for r in roots]
    result = make(target, cwd=tree, PYTHON=python, **variables)
    line = assert_refused(result, "lacks %s, which" % ", ".join(lacking or [pip for _, pip in kit_requirements()]),
                          before=before, roots=roots)
    assert '"%s" -m pip install -r %s' % (python, os.path.join(KIT, "requirements.txt")) in line
    assert "not supported" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("target", ["export", "train"])
@pytest.mark.parametrize("lacks", ["paddle", "requirements"])
def test_python_without_paddle_or_the_clones_requirements(env, tmp_path, target, lacks):
    """The kit's modules but no Paddle, or Paddle but not the clone's requirements: refused
    with the pip command before the series is applied (no traceback from the child)."""
    tree, data = env
    with open(os.path.join(tree, "requirements.txt"), "w") as f:  # the sdist has none
        f.write("shapely\nopencv-python>=4\nPyMuPDF  # never imported by rec training\n")
    python = venv_with(tmp_path / "py", KIT_MODULES + (("paddle",) if lacks == "requirements" else ()))
    cfg = write(data, base_config(data))
    write_centers(data / "c.pkl")
    roots = (tree, str(data))
    before = [snapshot(r) for r in roots]
    variables = dict(OUTPUT=str(data / "out.pkl")) if target == "export" else dict(CENTERS=str(data / "c.pkl"))
    result = make(target, cwd=tree, PYTHON=python, CONFIG=cfg, **variables)
    if lacks == "paddle":
        line = assert_refused(result, "has no Paddle", '"%s" -m pip install paddlepaddle' % python, before=before, roots=roots)
    else:
        line = assert_refused(result, "lacks opencv-python, shapely of PaddleOCR's requirements",
                              '"%s" -m pip install -r %s' % (python, os.path.join(tree, "requirements.txt")),
                              before=before, roots=roots)
    assert "pymupdf" not in line.lower() and "Traceback" not in result.stderr


@pytest.mark.parametrize("exported, trained", [("Teacher", "Student"), (None, "Student"), ("Student", None)],
                         ids=["Teacher-for-Student", "single-for-Student", "Student-for-single"])
def test_train_refuses_centers_whose_report_names_another_model(env, exported, trained):
    """make train with centers whose report.json says another sub-model (or a single model
    for a Distillation one, or the reverse): one line before any training, even where
    widths and classes match and the centers alone would pass."""
    tree, data = env
    cfg = write(data, distill_config(data) if trained else base_config(data))
    centers = data / "teacher.pkl"
    write_centers(centers)  # a pkl in CenterLoss's format, refused on its report
    (data / "teacher.report.json").write_text('{"model": %s}' % ("null" if exported is None else '"%s"' % exported))
    roots = (tree, str(data))
    before = [snapshot(r) for r in roots]
    result = make("train", cwd=tree, CONFIG=cfg, CENTERS=str(centers), **({"MODEL": trained} if trained else {}))
    assert_refused(result, "CENTERS=%s were exported from %s" % (centers, "sub-model %s" % exported if exported else "a single-model config"),
                   "this run trains %s" % ("sub-model %s" % trained if trained else "a single-model config"),
                   "MODEL=%s" % trained if trained else "for this CONFIG", "teacher.report.json aside",
                   before=before, roots=roots)


@pytest.mark.parametrize("what", ["label file", "data_dir", "image"])
def test_train_preflights_the_eval_data(env, what):
    """make train checks the Eval data (tools/train.py builds its loader) as it checks the
    Train data: one line naming Eval, not a config dump and a FileNotFoundError traceback."""
    tree, data = env
    cfg = base_config(data)
    if what == "label file":
        cfg["Eval"]["dataset"]["label_file_list"] = [str(data / "val.txt")]
    elif what == "data_dir":
        cfg["Eval"]["dataset"]["data_dir"] = str(data / "val")
    else:
        (data / "val.txt").write_text("img/0.png\t1\nimg/7.png\t2\n")
        cfg["Eval"]["dataset"]["label_file_list"] = [str(data / "val.txt")]
    path = write(data, cfg)
    write_centers(data / "c.pkl")
    roots = (tree, str(data))
    before = [snapshot(r) for r in roots]
    result = make("train", cwd=tree, CONFIG=path, CENTERS=str(data / "c.pkl"))
    needles = {"label file": ["val.txt does not exist", "Eval.dataset.label_file_list"],
               "data_dir": ["Eval.dataset.data_dir", "val does not exist"], "image": ["val.txt:2 names image img/7.png"]}[what]
    assert_refused(result, *needles, before=before, roots=roots)
    assert "Traceback" not in result.stderr


def git(tree, *args):
    return subprocess.run(["git", "-c", "user.name=kit test", "-c", "user.email=kit@test.invalid", *args], cwd=tree,
                          capture_output=True, text=True, check=True).stdout


def test_local_edit_then_status_names_the_file_the_hunk_and_a_next_step_that_works(clone_source, tmp_path):
    """A local edit in a patched file: make status names the file, the first hunk that
    fails and the line that differs, and gives the next step (git diff / git stash / git
    checkout; for a committed edit, a checkout of the release); make check and make export
    refuse with the same in one line; following the advice clears it."""
    release = NEWEST
    cached = upstream.release_tree(clone_source, release)
    if cached is None:
        pytest.skip("%s has neither tag %s nor the commit the shared table gives" % (clone_source, release))
    tree = str(tmp_path / "clone")  # of its own: edited and committed in
    subprocess.run(["git", "clone", "-q", cached, tree], check=True)
    rel = patchfile.EXPORT_TARGET
    with open(os.path.join(tree, rel)) as f:
        edited_line = len(f.read().splitlines()) + 1
    with open(os.path.join(tree, rel), "a") as f:
        f.write("# my local edit\n")
    status = make("status", cwd=tree)
    assert "conflict: %s (0001-" % rel in status.stdout, status.stdout
    assert "fails at line %d, which is '# my local edit' where the patch expects the end of the file" % edited_line in status.stdout
    assert "next     see the local edits with `git diff %s`, set them aside with `git stash`" % rel in status.stdout
    assert "`git checkout -- %s`" % rel in status.stdout and "kit_center_loss" not in status.stdout
    data = user_files(tmp_path / "user")
    for target, variables in (("check", {}), ("export", dict(CONFIG=write(data, base_config(data)), OUTPUT=str(data / "o.pkl")))):
        line = assert_refused(make(target, cwd=tree, **variables), rel, "`git stash`", "`git diff %s`" % rel)
        assert "kit_center_loss" not in line
    git(tree, "stash")  # the advice works
    assert make("check", cwd=tree).returncode == 0
    git(tree, "stash", "pop")
    git(tree, "commit", "-qam", "my edit")  # committed: git stash cannot help any more
    status = make("status", cwd=tree)
    assert "the edits to %s are committed (`git diff %s -- %s` shows them)" % (rel, release, rel) in status.stdout, status.stdout
    assert "`git worktree add ../paddleocr-%s %s`" % (release, release) in status.stdout
    git(tree, "checkout", release, "--", rel)  # its other advice works too
    assert make("check", cwd=tree).returncode == 0
    git(tree, "reset", "-q", "--hard")
    # the kit's own copy of the loss, left by a `make apply` reverted by hand: not "your edit"
    shutil.copy(LOSS_SOURCE, os.path.join(tree, "ppocr", "losses", "kit_center_loss.py"))
    status = make("status", cwd=tree)
    assert "ppocr/losses/kit_center_loss.py (0004-" in status.stdout and "upstream has no such file" in status.stdout
    assert "is the kit's own copy" in status.stdout and "delete it" in status.stdout, status.stdout
    os.unlink(os.path.join(tree, "ppocr", "losses", "kit_center_loss.py"))
    assert git_status(tree) == ""


def test_candidate_series_of_unlisted_releases():
    """Newest first, after the series of the release's own major.minor line."""
    from centerkit import releases

    table = releases.load_table()
    newest_first = list(dict.fromkeys(r.series for r in reversed(table)))
    assert releases.candidate_series("v99.0.0", table) == newest_first
    assert releases.candidate_series(None, table) == newest_first  # a tree without a version
    unlisted = "v2.7.9"  # no release: a patch release of the v2.7 line the table does not list
    v27 = releases.candidate_series(unlisted, table)
    assert v27[0] == releases.listed_series(first_of("v2.7"), table) and sorted(v27) == sorted(newest_first)
    assert releases.listed_series(unlisted, table) is None
    assert releases.listed_series(table[-1].name, table) == table[-1].series
