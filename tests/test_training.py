"""Fast training tests on synthetic CelebA-layout and idx data written to tmp (tiny configs, CPU)."""

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import ROOT, TINY_DIMS, TINY_STARGAN, tiny_celeba, tiny_stargan_weights, write_idx

from stargan_app.errors import WeightsError
from stargan_app.inference import ClassSampler, FaceEditor
from stargan_app.training import stargan_loop
from stargan_app.training.cgan_loop import train_cgan
from stargan_app.training.options import CGANTrainConfig, StarGANTrainConfig
from stargan_app.training.resume import load_resume, resume_checkpoints
from stargan_app.training.stargan_loop import train_stargan


def tiny_train_config(tmp_path: Path, **kw) -> StarGANTrainConfig:
    """A few CPU steps of TINY_STARGAN on a 24-image CelebA layout in tmp_path/celeba (2 of its files corrupt)."""
    base = dict(
        data_dir=tiny_celeba(tmp_path),
        run_dir=str(tmp_path / "run"),
        out=str(tmp_path / "w.safetensors"),
        **{name: getattr(TINY_STARGAN, name) for name in TINY_DIMS},
        test_size=4,
        batch_size=4,
        num_iters=6,
        n_critic=2,
        log_every=2,
        save_every=3,
        sample_every=3,
        device="cpu",
        fp16_export=False,
    )
    return StarGANTrainConfig(**{**base, **kw})


def test_stargan_trains_exports_and_skips_corrupt(tmp_path, capsys):
    cfg = tiny_train_config(tmp_path)
    train_stargan(cfg)
    assert "2 skipped" in capsys.readouterr().out
    state = load_resume(cfg.run_dir)
    assert state["step"] == 6 and all(torch.isfinite(v).all() for v in state["G"].values())
    assert list((Path(cfg.run_dir) / "samples").glob("*.png"))
    editor = FaceEditor.from_pretrained(cfg.out)
    assert editor.config.image_size == 32 and editor.D is not None


def at_step(monkeypatch, step: int, action: Callable[[], None]) -> None:
    """Call `action` once training reaches `step` (0-based), as its batch is drawn (the step never completes)."""
    real_draw_batch, calls = stargan_loop.draw_batch, []

    def draw_batch(*args):
        calls.append(1)
        if len(calls) == step + 1:  # one batch per step
            action()
        return real_draw_batch(*args)

    monkeypatch.setattr(stargan_loop, "draw_batch", draw_batch)


def ctrl_c() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("recipe", ["wgan-gp", "v2"])
def test_resume_after_ctrl_c_matches_uninterrupted_run(tmp_path, monkeypatch, recipe):
    full = tiny_train_config(tmp_path, run_dir=str(tmp_path / "full"), out="", save_every=100, recipe=recipe)
    train_stargan(full)
    part = tiny_train_config(tmp_path, run_dir=str(tmp_path / "part"), out="", save_every=100, recipe=recipe)
    at_step(monkeypatch, 3, ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        train_stargan(part)
    assert load_resume(part.run_dir)["step"] == 3  # saved on Ctrl-C
    monkeypatch.undo()
    train_stargan(part)
    a, b = load_resume(full.run_dir), load_resume(part.run_dir)
    for key in ("G", "D", "G_ema"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name}"


def test_sigterm_saves_like_ctrl_c(tmp_path, monkeypatch):
    import signal

    cfg = tiny_train_config(tmp_path, out="", save_every=100)
    at_step(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(KeyboardInterrupt):
        train_stargan(cfg)
    assert load_resume(cfg.run_dir)["step"] == 2  # steps 0 and 1 completed; the one in flight is dropped
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again


def test_truncated_checkpoint_falls_back_to_previous(tmp_path):
    cfg = tiny_train_config(tmp_path, out="", num_iters=6, save_every=3)
    train_stargan(cfg)
    newest, previous = resume_checkpoints(cfg.run_dir)[:2]
    newest.write_bytes(newest.read_bytes()[:1000])  # as if killed mid-write without the atomic rename
    assert load_resume(cfg.run_dir)["step"] == int(previous.stem.split("_")[1])


def tiny_cgan_config(tmp_path: Path, **kw) -> CGANTrainConfig:
    """A cgan run on 64 random 28x28 idx images written to tmp_path."""
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (64, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, (64,)))
    base = dict(
        data_dir=str(tmp_path),
        run_dir=str(tmp_path / "run"),
        out=str(tmp_path / "c.safetensors"),
        batch_size=16,
        device="cpu",
    )
    return CGANTrainConfig(**{**base, **kw})


def test_cgan_trains_and_sampler_loads(tmp_path):
    cfg = tiny_cgan_config(tmp_path, dataset="fashion", epochs=2, log_every=2, save_every=4, sample_every=4)
    train_cgan(cfg)
    sampler = ClassSampler.from_pretrained(cfg.out)
    assert sampler.classes[0] == "T-shirt/top" and len(sampler.sample("Bag", n=3)) == 3
    assert load_resume(cfg.run_dir)["step"] == 8


def test_cgan_ships_the_moving_average_generator(tmp_path):
    cfg = tiny_cgan_config(tmp_path, epochs=3, log_every=4, save_every=100, sample_every=0, ema_decay=0.5)
    train_cgan(cfg)
    state = load_resume(cfg.run_dir)
    shipped = ClassSampler.from_pretrained(cfg.out).G.state_dict()
    differs_from_last = False
    for name, ema in state["G_ema"].items():
        assert torch.equal(shipped[name], ema), name
        differs_from_last |= not torch.equal(ema, state["G"][name])
    assert differs_from_last  # the average lags the last step's weights
    assert state["model_config"]["d_projection"] is True


def test_projection_discriminator_depends_on_the_label():
    from stargan_app.config import CGANConfig
    from stargan_app.models import CGANDiscriminator

    torch.manual_seed(0)
    img = torch.rand(4, 1, 28, 28) * 2 - 1
    for projection in (False, True):
        D = CGANDiscriminator(CGANConfig(d_hidden=(16, 16), d_projection=projection)).eval()
        assert (D.projection is not None) == projection
        assert D(img, torch.zeros(4, dtype=torch.long)).shape == (4,)
        assert not torch.equal(D(img, torch.zeros(4, dtype=torch.long)), D(img, torch.ones(4, dtype=torch.long)))


TWO_STEPS = dict(num_iters=2, save_every=2, sample_every=0)  # a checkpoint at the end, no sample sheets


def init_weights_file(tmp_path: Path) -> str:
    """The weights file of a 2-step run, to start others from."""
    first = tiny_train_config(tmp_path, run_dir=str(tmp_path / "first"), **TWO_STEPS)
    train_stargan(first)
    return first.out


def frozen_run_from(tmp_path: Path, init: str) -> StarGANTrainConfig:
    """A 2-step run started from `init` with learning rate 0: the weights must come through unchanged."""
    again = dict(run_dir=str(tmp_path / "again"), out=str(tmp_path / "again.safetensors"), seed=1)
    return tiny_train_config(tmp_path, **again, **TWO_STEPS, init_weights=init, g_lr=0.0, d_lr=0.0)


def test_stargan_init_weights_starts_from_a_weights_file(tmp_path):
    init = init_weights_file(tmp_path)
    train_stargan(frozen_run_from(tmp_path, init))
    a = FaceEditor.from_pretrained(init).G.state_dict()
    b = FaceEditor.from_pretrained(tmp_path / "again.safetensors")
    for name, t in b.G.state_dict().items():
        assert torch.equal(t, a[name]), name
    assert b.info["init_steps"] == 2 and b.info["steps"] == 2


def test_stargan_init_weights_of_another_shape_are_refused(tmp_path):
    init = init_weights_file(tmp_path)
    wider = tiny_train_config(tmp_path, run_dir=str(tmp_path / "wider"), conv_dim=16, num_iters=2, init_weights=init)
    with pytest.raises(WeightsError, match="trained with"):
        train_stargan(wider)


def test_a_resumed_run_reads_its_own_checkpoint_and_keeps_the_init_provenance(tmp_path):
    init = init_weights_file(tmp_path)
    again = frozen_run_from(tmp_path, init)
    train_stargan(again)
    Path(init).unlink()  # a resume reads its own checkpoint, not the init file
    train_stargan(dataclasses.replace(again, num_iters=3))
    resumed = FaceEditor.from_pretrained(again.out)
    assert resumed.info["steps"] == 3 and resumed.info["init_steps"] == 2


def test_torchrun_two_processes_rank0_writes(tmp_path):
    cfg = tiny_train_config(tmp_path, **TWO_STEPS, batch_size=2, log_every=1)
    flags = ["data_dir", "run_dir", "out", *TINY_DIMS, "test_size", "batch_size", "num_iters", "n_critic", "log_every"]
    flags += ["save_every", "sample_every", "device"]  # the same run as `cfg`, from the command line
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(ROOT / "app.py"),
    ]
    cmd += [
        "train",
        "stargan",
        *(arg for name in flags for arg in ("--" + name.replace("_", "-"), str(getattr(cfg, name)))),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in resume_checkpoints(cfg.run_dir)] == ["step_00000002.pt"]
    assert not list(Path(cfg.run_dir, "checkpoints").glob("*.tmp"))
    assert proc.stdout.count("wrote ") == 1  # only rank 0 exports
    FaceEditor.from_pretrained(cfg.out)


@pytest.mark.parametrize(
    "cmd",
    [
        ["train", "--help"],
        ["train", "stargan", "--help"],
        ["train", "cgan", "--help"],
        ["train", "all", "--help"],
        ["export", "--help"],
        ["import-official", "--help"],
        ["eval", "stargan", "--help"],
    ],
)
def test_help_documents_flags(cmd):
    proc = subprocess.run([sys.executable, str(ROOT / "app.py"), *cmd], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "usage" in proc.stdout


def test_a_campaign_continues_from_its_committed_training_state(tmp_path):
    """Session 1 seeds from a file and exports a training state; session 2, on a machine without runs/, continues
    from that file alone: the step count, the stages and the cumulative totals go on, G and D are the state's."""
    from stargan_app.checkpoint import read_tensors
    from stargan_app.training.export import TRAINING_G, export_run

    seed = init_weights_file(tmp_path)  # 2 steps at n_critic 2: 1 G update
    first = tiny_train_config(tmp_path, run_dir=str(tmp_path / "s1"), out="", num_iters=4, save_every=4, sample_every=0)
    train_stargan(dataclasses.replace(first, init_weights=seed, recipe="v2", augment="translation,cutout"))
    state = export_run(first.run_dir, tmp_path / "state.safetensors", fp16=True, training_state=True)
    shutil.rmtree(first.run_dir)
    assert FaceEditor.from_pretrained(state).info["total_g_updates"] == 1 + 2  # the file also serves

    second = tiny_train_config(
        tmp_path, run_dir=str(tmp_path / "s2"), out=str(tmp_path / "s2.safetensors"), num_iters=6
    )
    train_stargan(dataclasses.replace(second, continue_from=str(state), recipe="v2", g_lr=0.0, d_lr=0.0, lambda_r1=0.1))
    info = FaceEditor.from_pretrained(second.out).info
    assert info["steps"] == 6
    assert [s["steps"] for s in info["stages"]] == [[0, 2], [0, 4], [4, 6]]
    assert [s["g_updates"] for s in info["stages"]] == [1, 2, 1] and info["total_g_updates"] == 4
    assert info["stages"][1]["seeded_from"] == seed and info["stages"][1]["augment"] == "translation,cutout"
    assert [s["loss_weights"].get("r1") for s in info["stages"][1:]] == [1.0, 0.1]  # a changed option is a new stage's
    assert info["total_train_seconds"] == pytest.approx(sum(s["train_seconds"] for s in info["stages"]), abs=0.2)
    resumed = load_resume(second.run_dir)
    for name, t in read_tensors(state, TRAINING_G).items():  # learning rate 0: the raw G came through unchanged
        torch.testing.assert_close(resumed["G"][name], t.float())
    for name, t in read_tensors(state, "D").items():
        torch.testing.assert_close(resumed["D"][name], t.float())


def test_continue_from_a_plain_weights_file_is_refused(tmp_path):
    seed = init_weights_file(tmp_path)
    cfg = tiny_train_config(tmp_path, run_dir=str(tmp_path / "c"), num_iters=4, continue_from=seed)
    with pytest.raises(WeightsError, match="not a training state"):
        train_stargan(cfg)


def test_files_and_runs_that_name_a_removed_option_are_refused_with_its_note(tmp_path):
    import json

    from stargan_app.checkpoint import load_weights, read_metadata
    from stargan_app.cli import build_config, build_parser

    path = tiny_stargan_weights(tmp_path / "masked.safetensors")
    meta = read_metadata(path)
    config = json.loads(meta["config"])
    meta["config"] = json.dumps({**config, "output": "masked"})
    tensors = {k: v for k, v in safetensors.torch.load_file(path).items()}
    safetensors.torch.save_file(tensors, path, metadata=meta)
    with pytest.raises(WeightsError, match="output 'masked' was removed"):
        load_weights(path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"targets": "balanced", "num_iters": 4}))
    args = build_parser().parse_args(["train", "stargan", "--resume", str(run)])
    with pytest.raises(SystemExit, match="targets 'balanced' was removed"):
        build_config(StarGANTrainConfig, args, resume=args.resume)
