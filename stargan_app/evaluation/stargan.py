"""`app.py eval stargan`: judge face edits the way a user sees them.

A reference attribute classifier (trained on training ids only, class-balanced, flips, per-attribute thresholds
tuned on a validation slice of the training ids) reads:
- transfer on raw crops: G applied to the training-geometry crop of each held-out face;
- transfer through the pipeline: FaceEditor.edit on the whole held-out photo (detect, align, edit, paste back),
  then the same crop cut from the edited photo;
- reconstruction L1 of the raw G at the source labels, and how often the judge reads each attribute on that
  reconstruction of the faces without it (the raw figures' control: a G whose every output carries texture the judge
  reads as an attribute scores high raw transfer without editing anything);
- realism: the Fréchet distance, in the classifier's feature space, between edited and unedited crops.
Its own recall and specificity on the real held-out faces stand beside every figure.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from stargan_app.config import HAIR_COLOURS
from stargan_app.errors import StarGANAppError
from stargan_app.evaluation.classifier import (
    SEED,
    SmallCNN,
    cached_classifier,
    penultimate_features,
    predict_logits,
    print_table,
    train_classifier,
)
from stargan_app.face.align import celeba_center_crop
from stargan_app.imaging import pil_to_tensor, to_model_range
from stargan_app.labels import full_label_vector, present, target_vector

if TYPE_CHECKING:
    from stargan_app.inference import FaceEditor

CLASSIFIER_EPOCHS = 10
CLASSIFIER_VALIDATION = 1000  # the last training ids tune the thresholds; they are never held-out ids
CLASSIFIER_RECIPE = "balanced-bce+flip+thresholds/v1"  # part of the cache key: change it when the recipe changes
SHEET_EDITS: tuple[str, ...] | None = None  # the sheet's columns; None: every attribute of the model, in its order


def train_attribute_classifier(
    images: torch.Tensor, targets: torch.Tensor, epochs: int = CLASSIFIER_EPOCHS, seed: int = SEED
) -> SmallCNN:
    """Multi-label SmallCNN with BCE weighted by each attribute's negative/positive ratio, and random flips."""
    return train_classifier(images, targets, multilabel=True, epochs=epochs, seed=seed, balanced=True, flips=True)


def tune_thresholds(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per attribute, the logit threshold that maximises min(recall, specificity) on a validation set."""
    thresholds = []
    for j in range(logits.size(1)):
        scores, pos = logits[:, j], present(truth[:, j])
        best, best_t = -1.0, 0.0
        for t in torch.quantile(scores, torch.linspace(0.01, 0.99, 197)).tolist():
            pred = scores > t
            recall = float(pred[pos].float().mean()) if pos.any() else 1.0
            specificity = float((~pred[~pos]).float().mean()) if (~pos).any() else 1.0
            if min(recall, specificity) > best:
                best, best_t = min(recall, specificity), t
        thresholds.append(best_t)
    return torch.tensor(thresholds)


def recall_specificity(pred: torch.Tensor, truth: torch.Tensor) -> tuple[list[float], list[float]]:
    pos = present(truth)
    recall = [
        float(pred[pos[:, j], j].float().mean()) if pos[:, j].any() else float("nan") for j in range(pred.size(1))
    ]
    spec = [
        float((~pred[~pos[:, j], j]).float().mean()) if (~pos[:, j]).any() else float("nan")
        for j in range(pred.size(1))
    ]
    return recall, spec


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(cov_a)
    root_a = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * cross)


def switch_on_faces(attribute: str, truth: torch.Tensor, attributes: tuple[str, ...]) -> torch.Tensor:
    """Faces where switching the attribute on is a change (hair colours: faces without that colour)."""
    return ~present(truth[:, attributes.index(attribute)])


@dataclass
class Judge:
    """The reference attribute classifier with its tuned thresholds."""

    classifier: SmallCNN
    thresholds: torch.Tensor  # per-attribute logit thresholds (tuned on the validation ids)
    cache: Path  # where the classifier's weights are cached
    cached: bool  # whether they were loaded from there rather than trained now
    seconds: float  # time to load or train it and tune the thresholds

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, n_attributes) bool: which attributes the judge sees on each crop (uint8 or [-1, 1])."""
        return predict_logits(self.classifier, crops) > self.thresholds

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        return penultimate_features(self.classifier, crops)


def build_judge(
    data_dir: str,
    files: list[str],
    labels: torch.Tensor,
    attributes: tuple[str, ...],
    size: int,
    split: int,
    cache_dir: str,
) -> Judge:
    """Train (or load from cache_dir) the judge on ids before split - CLASSIFIER_VALIDATION; tune it on the rest."""
    from stargan_app.training.data import decode_images

    folder = Path(data_dir) / "img_align_celeba"
    key = f"{Path(data_dir).resolve()}|{','.join(attributes)}|{size}|{split}|{CLASSIFIER_EPOCHS}|{CLASSIFIER_RECIPE}"
    cache = Path(cache_dir) / f"stargan_judge_{size}px_{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"
    fit_ids, val_ids = list(range(split - CLASSIFIER_VALIDATION)), list(range(split - CLASSIFIER_VALIDATION, split))

    def build() -> SmallCNN:
        imgs, keep = decode_images(folder, [files[i] for i in fit_ids], size)
        return train_attribute_classifier(imgs, labels[fit_ids][torch.from_numpy(keep)], epochs=CLASSIFIER_EPOCHS)

    t0 = time.time()
    clf, cached = cached_classifier(cache, build, lambda: SmallCNN(3, len(attributes)))
    val_u8, val_keep = decode_images(folder, [files[i] for i in val_ids], size)
    thresholds = tune_thresholds(predict_logits(clf, val_u8), labels[val_ids][torch.from_numpy(val_keep)])
    return Judge(clf, thresholds, cache, cached, time.time() - t0)


def raw_transfer(
    editor: FaceEditor, judge: Judge, x: torch.Tensor, truth: torch.Tensor
) -> tuple[dict[str, float], list[torch.Tensor]]:
    """Per attribute, the share of faces without it that the judge reads as having it after the generator alone
    switched it on (true source labels, training-geometry crops x); also returns the edited crops."""
    schema, attributes = editor.schema, editor.attributes
    transfer, crops = {}, []
    for a in attributes:
        group, j = schema.group_of(a), attributes.index(a)
        sel = switch_on_faces(a, truth, attributes)
        trg = torch.stack([target_vector(schema, row, {a: True}) for row in truth[sel]]) if sel.any() else truth[:0]
        out = editor.translate_crops(x[sel], full_label_vector(schema, group, trg[:, schema.group_slice(group)]))
        transfer[a] = float(judge(out)[:, j].float().mean()) if len(out) else float("nan")
        crops.append(out)
    return transfer, crops


def pipeline_transfer(
    editor: Any, judge: Judge, photos: list[Path], truth: torch.Tensor, size: int
) -> tuple[dict[str, float], list[torch.Tensor], int]:
    """The same share through the app: detect, align, edit, paste back into the photo, then judge the training crop cut
    from the edited photo. A face the detector misses counts as a failed edit. Returns (transfer, crops, misses)."""
    attributes = editor.attributes
    hits: dict[str, list[bool]] = {a: [] for a in attributes}
    crops, missed = [], 0
    for i, path in enumerate(photos):
        todo = [a for a in attributes if switch_on_faces(a, truth[i : i + 1], attributes)[0]]
        with Image.open(path) as im:
            photo = im.convert("RGB")
        try:
            prep = editor.prepare(photo)
        except StarGANAppError:
            missed += 1
            for a in todo:
                hits[a].append(False)
            continue
        if not todo:
            continue
        edited = torch.stack(
            [pil_to_tensor(celeba_center_crop(editor.edit(prep, {a: True}).image, size)) for a in todo]
        )
        verdict = judge(edited)
        for k, a in enumerate(todo):
            hits[a].append(bool(verdict[k, attributes.index(a)]))
        crops.append(edited)
    return {a: float(np.mean(v)) if v else float("nan") for a, v in hits.items()}, crops, missed


def eval_stargan(
    weights: str | None = None,
    data_dir: str = "../shared/data/celeba-10k",
    test_size: int = 1000,
    limit: int = 0,
    cache_dir: str = "runs/eval_cache",
    sheet: str | None = None,
    faces_dir: str | None = None,
    change_smoothing: float | None = None,
    change_window: float | None = None,
    regions: str | None = None,
    guided: bool | None = None,
) -> dict[str, Any]:
    """All figures for one weights file; prints the tables and returns them as a dict (see the module doc).

    change_smoothing, change_window: how the editor blurs and windows an image generator's change (None: the app's
    defaults). regions: "off", or a region-maps file (None: the one beside the weights, if any); guided: the
    edge-aware paste-back on or off (None: on exactly when there are maps).
    """
    from stargan_app.inference import FaceEditor
    from stargan_app.training.data import decode_images, read_celeba_attributes

    options = {
        k: v for k, v in (("change_smoothing", change_smoothing), ("change_window", change_window)) if v is not None
    }
    if regions is not None:
        options["regions"] = False if regions == "off" else regions
    editor = FaceEditor.from_pretrained(weights, guided=guided, **options)
    schema, size, attributes = editor.schema, editor.config.image_size, editor.attributes
    files, names, values = read_celeba_attributes(data_dir)
    missing = [a for a in attributes if a not in names]
    if missing:
        raise ValueError(f"attributes not in list_attr_celeba.txt: {missing}")
    labels = torch.from_numpy(values[:, [names.index(a) for a in attributes]])
    if not 0 < test_size < len(files) - CLASSIFIER_VALIDATION:
        raise ValueError(f"test_size must leave training ids for the classifier, got {test_size} of {len(files)}")
    split = len(files) - test_size
    folder = Path(data_dir) / "img_align_celeba"
    judge = build_judge(data_dir, files, labels, attributes, size, split, cache_dir)

    test_files = files[split:][: limit or None]
    test_u8, keep = decode_images(folder, test_files, size)
    test_files = [f for f, k in zip(test_files, keep) if k]
    truth = labels[split:][: len(keep)][torch.from_numpy(keep)]
    x = to_model_range(test_u8)
    recall, specificity = recall_specificity(judge(test_u8), truth)

    raw, raw_crops = raw_transfer(editor, judge, x, truth)
    rec = editor.translate_crops(x, full_label_vector(schema, 0, truth[:, schema.group_slice(0)]))
    switched = {a: switch_on_faces(a, truth, attributes) for a in attributes}
    read_on_rec = judge(rec)
    false_on_rec = {
        a: float(read_on_rec[switched[a], j].float().mean()) if switched[a].any() else float("nan")
        for j, a in enumerate(attributes)
    }
    t0 = time.time()
    pipeline, pipeline_crops, missed = pipeline_transfer(editor, judge, [folder / f for f in test_files], truth, size)
    pipeline_seconds = time.time() - t0
    real_features = judge.features(x)

    hair = [a for a in attributes if a in HAIR_COLOURS]
    others = [a for a in attributes if a not in HAIR_COLOURS]
    summary = {
        "hair_pipeline": float(np.mean([pipeline[a] for a in hair])),
        "hair_raw": float(np.mean([raw[a] for a in hair])),
        "others_pipeline": float(np.mean([pipeline[a] for a in others])),
        "others_raw": float(np.mean([raw[a] for a in others])),
        "hair_false_on_reconstruction": float(np.mean([false_on_rec[a] for a in hair])),
        "others_false_on_reconstruction": float(np.mean([false_on_rec[a] for a in others])),
        "reconstruction_l1": float((rec - x).abs().mean()),
        "fd_pipeline": frechet_distance(judge.features(torch.cat(pipeline_crops)), real_features),
        "fd_raw": frechet_distance(judge.features(torch.cat(raw_crops)), real_features),
    }
    summary["hair_gap_raw_minus_pipeline"] = summary["hair_raw"] - summary["hair_pipeline"]
    result = {
        "weights": editor.info.get("path"),
        "change_smoothing": editor.change_smoothing,
        "change_window": editor.change_window,
        "regions": editor.regions.info.get("path") if editor.regions else None,
        "guided": editor.guided,
        "test_faces": len(test_files),
        "pipeline_no_face": missed,
        "transfer_raw": raw,
        "transfer_pipeline": pipeline,
        "false_on_reconstruction": false_on_rec,
        "faces_switched_on": {a: int(switched[a].sum()) for a in attributes},
        "judge": {
            "recall": dict(zip(attributes, recall)),
            "specificity": dict(zip(attributes, specificity)),
            "thresholds": dict(zip(attributes, judge.thresholds.tolist())),
            "cache": str(judge.cache),
            "cached": judge.cached,
            "seconds": round(judge.seconds, 1),
        },
        "summary": summary,
        "pipeline_seconds": round(pipeline_seconds, 1),
    }
    rows = [
        [a, raw[a], false_on_rec[a], pipeline[a], result["faces_switched_on"][a], recall[k], specificity[k]]
        for k, a in enumerate(attributes)
    ]
    paste = f"regions {result['regions'] or 'off'}, guided paste-back {'on' if editor.guided else 'off'}"
    print_table(
        f"StarGAN on {len(test_files)} held-out faces ({missed} without a detected face; {paste}); judge "
        f"{'cached' if judge.cached else 'trained'}: {judge.cache}",
        ["attribute", "raw", "raw_on_recon", "pipeline", "faces", "judge_recall", "judge_spec"],
        rows,
    )
    print("summary: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()))
    if sheet:
        print(f"wrote {write_sheet(editor, sheet, faces_dir)}")
    return result


def sheet_portraits(faces_dir: str | None) -> list[Path]:
    """The licensed single-face portraits in faces_dir (if present) and the example portraits in assets/."""
    assets = Path(__file__).resolve().parents[2] / "assets"
    found = (
        sorted(p for p in Path(faces_dir).glob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if faces_dir and Path(faces_dir).is_dir()
        else []
    )
    return found + sorted(assets.glob("*.png"))


def write_sheet(editor: FaceEditor, out: str | Path, faces_dir: str | None = None, tile: int = 256) -> Path:
    """A labelled PNG: each portrait as input plus each single-attribute edit of SHEET_EDITS (switched on, as served),
    cut around the face from the full edited photo."""
    from PIL import ImageDraw

    from stargan_app.imaging import load_image
    from stargan_app.inference.face_editor import face_square
    from stargan_app.labels import display_name

    edits = [a for a in SHEET_EDITS or editor.attributes if a in editor.attributes]
    rows = []
    for path in sheet_portraits(faces_dir):
        try:
            photo = load_image(path)
            faces = editor.detect(photo)
            if len(faces) != 1:
                print(f"sheet: skipped {path.name} ({len(faces)} faces)")
                continue
            prep = editor.prepare(photo)
        except StarGANAppError as e:
            print(f"sheet: skipped {path.name}: {e}")
            continue
        square = face_square(prep.face.box, photo.size)
        images = [photo] + [editor.edit(prep, {a: True}).image for a in edits]
        rows.append((path.name, [im.resize((tile, tile), Image.Resampling.LANCZOS, box=square) for im in images]))
    head, left = 24, 0
    sheet = Image.new("RGB", (left + tile * (len(edits) + 1), head + (tile + head) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, title in enumerate(["input"] + [display_name(a) for a in edits]):
        draw.text((left + k * tile + 6, 6), title, fill="black")
    for r, (name, tiles) in enumerate(rows):
        y = head + r * (tile + head)
        draw.text((6, y + tile + 6), name, fill="black")
        for k, t in enumerate(tiles):
            sheet.paste(t, (left + k * tile, y))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
