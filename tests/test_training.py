"""Fast training tests on synthetic CelebA-layout and idx data written to tmp (tiny configs, CPU)."""

import dataclasses
import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stargan_app.config import GROUP_A, GROUP_B
from stargan_app.errors import WeightsError
from stargan_app.inference import ClassSampler, FaceEditor
from stargan_app.training import stargan_loop
from stargan_app.training.cgan_loop import train_cgan
from stargan_app.training.checkpoints import load_resume, resume_checkpoints
from stargan_app.training.config import CGANTrainConfig, StarGANTrainConfig
from stargan_app.training.stargan_loop import train_stargan

ROOT = Path(__file__).resolve().parents[1]


def make_celeba(root: Path, n: int = 24, corrupt: int = 2) -> Path:
    (root / "img_align_celeba").mkdir(parents=True)
    names = list(GROUP_A + GROUP_B) + ["Male"]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        if i <= corrupt:
            (root / "img_align_celeba" / name).write_bytes(b"not a jpeg")
        else:
            Image.fromarray(rng.integers(0, 255, (109, 89, 3), dtype=np.uint8)).save(root / "img_align_celeba" / name)
        values = rng.choice([-1, 1], size=len(names), p=[0.7, 0.3])
        rows.append(name + " " + " ".join(f"{v:2d}" for v in values))
    (root / "list_attr_celeba.txt").write_text(f"{n}\n" + " ".join(names) + "\n" + "\n".join(rows) + "\n")
    return root


def tiny_stargan(tmp_path: Path, **kw) -> StarGANTrainConfig:
    base = dict(
        data_dir=str(make_celeba(tmp_path / "celeba")) if not (tmp_path / "celeba").exists() else str(tmp_path / "celeba"),
        run_dir=str(tmp_path / "run"),
        out=str(tmp_path / "w.safetensors"),
        image_size=32,
        conv_dim=8,
        g_repeat_num=1,
        d_conv_dim=8,
        d_repeat_num=4,
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
    base.update(kw)
    return StarGANTrainConfig(**base)


def test_stargan_trains_exports_and_skips_corrupt(tmp_path, capsys):
    cfg = tiny_stargan(tmp_path)
    train_stargan(cfg)
    assert "2 skipped" in capsys.readouterr().out
    state = load_resume(cfg.run_dir)
    assert state["step"] == 6 and all(torch.isfinite(v).all() for v in state["G"].values())
    assert list((Path(cfg.run_dir) / "samples").glob("*.png"))
    editor = FaceEditor.from_pretrained(cfg.out)
    assert editor.config.image_size == 32 and editor.D is not None


@pytest.mark.parametrize("recipe", ["wgan-gp", "v2"])
def test_resume_after_ctrl_c_matches_uninterrupted_run(tmp_path, monkeypatch, recipe):
    full = tiny_stargan(tmp_path, run_dir=str(tmp_path / "full"), out="", save_every=100, recipe=recipe)
    train_stargan(full)
    part = tiny_stargan(tmp_path, run_dir=str(tmp_path / "part"), out="", save_every=100, recipe=recipe)
    real_d_loss, calls = stargan_loop.compute_d_loss, []

    def interrupt_at_step_3(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_d_loss(*args)

    monkeypatch.setattr(stargan_loop, "compute_d_loss", interrupt_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_stargan(part)
    assert load_resume(part.run_dir)["step"] == 3  # saved on Ctrl-C
    monkeypatch.setattr(stargan_loop, "compute_d_loss", real_d_loss)
    train_stargan(part)
    a, b = load_resume(full.run_dir), load_resume(part.run_dir)
    for key in ("G", "D", "G_ema"):
        for name, t in a[key].items():
            assert torch.equal(t, b[key][name]), f"{key}.{name}"


def test_sigterm_saves_like_ctrl_c(tmp_path, monkeypatch):
    import signal

    cfg = tiny_stargan(tmp_path, out="", save_every=100)
    real_d_loss, calls = stargan_loop.compute_d_loss, []

    def terminate_at_step_2(*args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_d_loss(*args)

    monkeypatch.setattr(stargan_loop, "compute_d_loss", terminate_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train_stargan(cfg)
    assert load_resume(cfg.run_dir)["step"] == 2  # steps 0 and 1 completed; the one in flight is dropped
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again


def test_truncated_checkpoint_falls_back_to_previous(tmp_path):
    cfg = tiny_stargan(tmp_path, out="", num_iters=6, save_every=3)
    train_stargan(cfg)
    newest, previous = resume_checkpoints(cfg.run_dir)[:2]
    newest.write_bytes(newest.read_bytes()[:1000])  # as if killed mid-write without the atomic rename
    assert load_resume(cfg.run_dir)["step"] == int(previous.stem.split("_")[1])


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_cgan_trains_and_sampler_loads(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (64, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, (64,)))
    cfg = CGANTrainConfig(
        dataset="fashion",
        data_dir=str(tmp_path),
        run_dir=str(tmp_path / "run"),
        out=str(tmp_path / "c.safetensors"),
        batch_size=16,
        epochs=2,
        log_every=2,
        save_every=4,
        sample_every=4,
        device="cpu",
    )
    train_cgan(cfg)
    sampler = ClassSampler.from_pretrained(cfg.out)
    assert sampler.classes[0] == "T-shirt/top" and len(sampler.sample("Bag", n=3)) == 3
    assert load_resume(cfg.run_dir)["step"] == 8


def test_cgan_ships_the_moving_average_generator(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (64, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, (64,)))
    cfg = CGANTrainConfig(
        data_dir=str(tmp_path),
        run_dir=str(tmp_path / "run"),
        out=str(tmp_path / "c.safetensors"),
        batch_size=16,
        epochs=3,
        log_every=4,
        save_every=100,
        sample_every=0,
        device="cpu",
        ema_decay=0.5,
    )
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


def test_stargan_init_weights_starts_from_a_weights_file(tmp_path):
    first = tiny_stargan(tmp_path, run_dir=str(tmp_path / "first"), num_iters=2, save_every=2, sample_every=0)
    train_stargan(first)
    again = tiny_stargan(
        tmp_path,
        run_dir=str(tmp_path / "again"),
        out=str(tmp_path / "again.safetensors"),
        num_iters=2,
        save_every=2,
        sample_every=0,
        seed=1,
        init_weights=first.out,
        g_lr=0.0,
        d_lr=0.0,
    )
    train_stargan(again)  # learning rate 0: the weights must come through unchanged
    a = FaceEditor.from_pretrained(first.out).G.state_dict()
    b = FaceEditor.from_pretrained(again.out)
    for name, t in b.G.state_dict().items():
        assert torch.equal(t, a[name]), name
    assert b.info["init_steps"] == 2 and b.info["steps"] == 2
    wider = tiny_stargan(tmp_path, run_dir=str(tmp_path / "wider"), conv_dim=16, num_iters=2, init_weights=first.out)
    with pytest.raises(WeightsError, match="trained with"):
        train_stargan(wider)
    Path(first.out).unlink()  # a resume reads its own checkpoint, not the init file, and keeps its provenance
    train_stargan(dataclasses.replace(again, num_iters=3))
    resumed = FaceEditor.from_pretrained(again.out)
    assert resumed.info["steps"] == 3 and resumed.info["init_steps"] == 2


def test_torchrun_two_processes_rank0_writes(tmp_path):
    cfg = tiny_stargan(tmp_path, num_iters=2, save_every=2, sample_every=0)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(ROOT / "app.py"),
        "train",
        "stargan",
        "--data-dir",
        cfg.data_dir,
        "--run-dir",
        cfg.run_dir,
        "--out",
        cfg.out,
        "--image-size",
        "32",
        "--conv-dim",
        "8",
        "--g-repeat-num",
        "1",
        "--d-conv-dim",
        "8",
        "--d-repeat-num",
        "4",
        "--test-size",
        "4",
        "--batch-size",
        "2",
        "--num-iters",
        "2",
        "--n-critic",
        "2",
        "--log-every",
        "1",
        "--save-every",
        "2",
        "--sample-every",
        "0",
        "--device",
        "cpu",
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
