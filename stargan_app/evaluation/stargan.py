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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from stargan_app.config import HAIR_COLOURS
from stargan_app.data.celeba import CelebASplit, HeldOut, decode_images, read_split
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
from stargan_app.evaluation.realism import (
    FEATURE_EPOCHS,
    FEATURE_RECIPE,
    ColourAtlas,
    kid,
    squeeze,
    train_feature_network,
)
from stargan_app.face.align import celeba_center_crop
from stargan_app.imaging import to_model_range, to_pixels
from stargan_app.labels import full_label_vector, present, recall_specificity, target_vector

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


@dataclass
class Edits:
    """Per attribute, the held-out faces an edit switched it on for (indices into HeldOut) and their edited crops."""

    faces: dict[str, torch.Tensor]  # attribute -> (k,) long
    crops: dict[str, torch.Tensor]  # attribute -> (k, 3, S, S) uint8
    missed: dict[str, int]  # attribute -> switched-on faces the detector missed (failed edits)
    no_face: int = 0  # held-out photos in which the detector found no face

    def transfer(self, read: Callable[[torch.Tensor], torch.Tensor], attributes: tuple[str, ...]) -> dict[str, float]:
        """Per attribute, the share of its switched-on faces that `read` (crops -> (N, n_attributes) bool) reads as
        having it; a face the detector missed counts as a failed edit."""
        out = {}
        for j, a in enumerate(attributes):
            total = len(self.faces[a]) + self.missed[a]
            hits = float(read(self.crops[a])[:, j].sum()) if len(self.faces[a]) else 0.0
            out[a] = hits / total if total else float("nan")
        return out


def raw_edits(editor: FaceEditor, held: HeldOut) -> Edits:
    """G alone switches each attribute on (true source labels) on the training-geometry crops."""
    schema, attributes, x = editor.schema, editor.attributes, to_model_range(held.crops)
    faces, crops = {}, {}
    for a in attributes:
        group = schema.group_of(a)
        sel = switch_on_faces(a, held.truth, attributes)
        trg = torch.stack([target_vector(schema, row, {a: True}) for row in held.truth[sel]]) if sel.any() else None
        faces[a] = sel.nonzero().flatten()
        crops[a] = (
            to_pixels(
                editor.translate_crops(x[sel], full_label_vector(schema, group, trg[:, schema.group_slice(group)]))
            )
            if trg is not None
            else held.crops[:0]
        )
    return Edits(faces, crops, dict.fromkeys(attributes, 0))


def pipeline_edits(editor: Any, held: HeldOut, size: int) -> Edits:
    """The same edits through the app: detect, align, edit, paste back into the photo, then the training crop cut
    from the edited photo."""
    attributes = editor.attributes
    faces: dict[str, list[int]] = {a: [] for a in attributes}
    crops: dict[str, list[torch.Tensor]] = {a: [] for a in attributes}
    missed, no_face = dict.fromkeys(attributes, 0), 0
    for i, path in enumerate(held.photos):
        todo = [a for a in attributes if switch_on_faces(a, held.truth[i : i + 1], attributes)[0]]
        with Image.open(path) as im:
            photo = im.convert("RGB")
        try:
            prep = editor.prepare(photo)
        except StarGANAppError:
            no_face += 1
            for a in todo:
                missed[a] += 1
            continue
        for a in todo:
            edited = celeba_center_crop(editor.edit(prep, {a: True}).image, size)
            faces[a].append(i)
            crops[a].append(torch.from_numpy(np.asarray(edited).copy()).permute(2, 0, 1))
    empty = held.crops[:0]
    return Edits(
        {a: torch.tensor(v, dtype=torch.long) for a, v in faces.items()},
        {a: torch.stack(v) if v else empty for a, v in crops.items()},
        missed,
        no_face,
    )


def robust_transfer(
    read: Callable[[torch.Tensor], torch.Tensor],
    edits: Edits,
    held: HeldOut,
    attributes: tuple[str, ...],
    view: Callable[[torch.Tensor], torch.Tensor] = squeeze,
) -> dict[str, float]:
    """Transfer read (crops -> (N, n) bool) on a view of the edits (by default squeezed: blur + JPEG, so textures
    lose their effect), counting only the faces whose viewed original `read` does not already read as having it."""
    original = read(view(held.crops))
    out = {}
    for j, a in enumerate(attributes):
        keep = ~original[edits.faces[a], j]
        total = int(keep.sum()) + edits.missed[a]
        hits = float(read(view(edits.crops[a][keep]))[:, j].sum()) if keep.any() else 0.0
        out[a] = hits / total if total else float("nan")
    return out


def kid_ratios(
    features: Callable[[torch.Tensor], torch.Tensor],
    edits: Edits,
    held: HeldOut,
    reference: torch.Tensor,
    reference_truth: torch.Tensor,
    attributes: tuple[str, ...],
) -> dict[str, dict[str, float]]:
    """Per attribute A: KID of the edited crops to real faces with A (reference crops whose truth has A), of the same
    faces unedited, and their ratio (1.0: the edit moved nothing towards real faces with A)."""
    out = {}
    for j, a in enumerate(attributes):
        real = features(reference[present(reference_truth[:, j])])
        edited = kid(features(edits.crops[a]), real)
        unedited = kid(features(held.crops[edits.faces[a]]), real)
        ratio = edited / unedited if unedited > 0 else float("nan")
        out[a] = {"kid_edited": edited, "kid_unedited": unedited, "ratio": ratio}
    return out


def colour_implausible(atlas: ColourAtlas, edits: Edits, held: HeldOut, attributes: tuple[str, ...]) -> dict:
    """Per attribute, the share of changed crop pixels whose colour real faces do not have at that place."""
    return {
        a: atlas.implausible_share(edits.crops[a], held.crops[edits.faces[a]]) if len(edits.faces[a]) else float("nan")
        for a in attributes
    }


def read_eval_split(data_dir: str, test_size: int) -> CelebASplit:
    """The CelebA split, refused when it leaves the judge too few training ids to fit and tune on."""
    celeba = read_split(data_dir, test_size)
    if not 0 < test_size < len(celeba.files) - CLASSIFIER_VALIDATION:
        raise ValueError(
            f"test_size must leave training ids for the classifier, got {test_size} of {len(celeba.files)}"
        )
    return celeba


def build_realism_references(celeba: CelebASplit, size: int, cache_dir: str) -> tuple[SmallCNN, ColourAtlas]:
    """The KID feature network (all labels, blur and noise; trained on the judge's fitting ids, cached) and the colour
    atlas of the same training crops."""
    fit_ids = list(range(celeba.split - CLASSIFIER_VALIDATION))
    key = f"{celeba.folder.resolve()}|{size}|{celeba.split}|{FEATURE_EPOCHS}|{FEATURE_RECIPE}"
    cache = Path(cache_dir) / f"stargan_features_{size}px_{hashlib.sha1(key.encode()).hexdigest()[:12]}.pt"
    crops, ids = celeba.crops(fit_ids, size)
    net, _ = cached_classifier(
        cache, lambda: train_feature_network(crops, celeba.values[ids]), lambda: SmallCNN(3, len(celeba.names))
    )
    return net, ColourAtlas(crops)


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
    person_masks: bool = True,
    robust_reader: str | None = None,
    hair_colours: str | None = None,
) -> dict[str, Any]:
    """All figures for one weights file; prints the tables and returns them as a dict (see the module doc).

    change_smoothing, change_window: how the editor blurs and windows an image generator's change (None: the app's
    defaults). regions: "off", or a region-maps file (None: the one beside the weights, if any); guided: the
    edge-aware paste-back on or off (None: on exactly when there are maps); person_masks: hair edits gated by each
    face's person and skin masks, as served (they change the hair figures: compare files with the same setting).
    robust_reader: a second robust attribute network (`train guide`, another seed) that neither guided G nor judges
    here: its transfer (unsqueezed) is a reading only real features pass. It must not be the file that guided G.
    hair_colours: "off", or a hair-colour model file (None: the one beside the weights, if any).
    """
    editor = eval_editor(weights, change_smoothing, change_window, regions, guided, person_masks, hair_colours)
    size, attributes = editor.config.image_size, editor.attributes
    celeba = read_eval_split(data_dir, test_size)
    judge = build_judge(data_dir, celeba.files, celeba.labels(attributes), attributes, size, celeba.split, cache_dir)
    feature_net, atlas = build_realism_references(celeba, size, cache_dir)
    held = celeba.held_out(attributes, size, limit)
    result = {
        "weights": editor.info.get("path"),
        "change_smoothing": editor.change_smoothing,
        "change_window": editor.change_window,
        "regions": editor.regions.info.get("path") if editor.regions else None,
        "hair_colours": editor.compositor.hair_colours is not None,
        "guided": editor.guided,
        "person_masks": editor.segmenter is not None,
        "guides": guides_of(editor.info),
        "test_faces": len(held.photos),
        **measure(editor, celeba, held, judge, feature_net, atlas, robust_reader),
    }
    print_results(result, attributes, editor)
    if sheet:
        print(f"wrote {write_sheet(editor, sheet, faces_dir)}")
    return result


def eval_editor(
    weights: str | None,
    change_smoothing: float | None,
    change_window: float | None,
    regions: str | None,
    guided: bool | None,
    person_masks: bool,
    hair_colours: str | None = None,
) -> FaceEditor:
    """The served editor of a weights file, with the paste-back options an eval names (None: the app's)."""
    from stargan_app.inference import FaceEditor
    from stargan_app.inference.compositing import regions_option

    options = {
        k: v for k, v in (("change_smoothing", change_smoothing), ("change_window", change_window)) if v is not None
    }
    for name, value in (("regions", regions), ("hair_colours", hair_colours)):
        if value is not None:
            options[name] = regions_option(value)
    return FaceEditor.from_pretrained(weights, guided=guided, person_masks=person_masks, **options)


def measure(
    editor: FaceEditor,
    celeba: CelebASplit,
    held: HeldOut,
    judge: Judge,
    feature_net: SmallCNN,
    atlas: ColourAtlas,
    robust_reader: str | None,
) -> dict[str, Any]:
    """The figures of the raw G and of the served edits of the held-out faces, per attribute and summarised."""
    schema, size, attributes = editor.schema, editor.config.image_size, editor.attributes
    recall, specificity = recall_specificity(judge(held.crops), held.truth)
    raw = raw_edits(editor, held)
    x = to_model_range(held.crops)
    rec = editor.translate_crops(x, full_label_vector(schema, 0, held.truth[:, schema.group_slice(0)]))
    read_on_rec = judge(rec)
    switched = {a: switch_on_faces(a, held.truth, attributes) for a in attributes}
    false_on_rec = {
        a: float(read_on_rec[switched[a], j].float().mean()) if switched[a].any() else float("nan")
        for j, a in enumerate(attributes)
    }
    t0 = time.time()
    served = pipeline_edits(editor, held, size)
    pipeline_seconds = time.time() - t0
    reference, reference_ids = celeba.crops(list(range(celeba.split - CLASSIFIER_VALIDATION, celeba.split)), size)
    features = partial(penultimate_features, feature_net)
    per_attribute = {
        "transfer_raw": raw.transfer(judge, attributes),
        "transfer_pipeline": served.transfer(judge, attributes),
        "robust_transfer_pipeline": robust_transfer(judge, served, held, attributes),
        "colour_implausible_pipeline": colour_implausible(atlas, served, held, attributes),
        "kid_pipeline": kid_ratios(
            features, served, held, reference, celeba.labels(attributes)[reference_ids], attributes
        ),
        "false_on_reconstruction": false_on_rec,
    }
    if robust_reader:
        read, reader_sha = reader_for(robust_reader, editor)
        per_attribute["robust_net_transfer_pipeline"] = robust_transfer(
            read, served, held, attributes, view=lambda crops: crops
        )
    summary = summarise(per_attribute, attributes)
    real_features = judge.features(x)
    summary.update(
        reconstruction_l1=float((rec - x).abs().mean()),
        fd_pipeline=frechet_distance(judge.features(torch.cat(list(served.crops.values()))), real_features),
        fd_raw=frechet_distance(judge.features(torch.cat(list(raw.crops.values()))), real_features),
        colour_implausible_real=atlas.implausible_share(held.crops),
    )
    return {
        "robust_reader": {"file": robust_reader, "sha256": reader_sha} if robust_reader else None,
        "pipeline_no_face": served.no_face,
        **per_attribute,
        "faces_switched_on": {a: int(switched[a].sum()) for a in attributes},
        "judge": judge_figures(judge, attributes, recall, specificity),
        "summary": summary,
        "pipeline_seconds": round(pipeline_seconds, 1),
    }


def judge_figures(judge: Judge, attributes: tuple[str, ...], recall: list, specificity: list) -> dict[str, Any]:
    """The judge's own recall and specificity on the real held-out faces, its thresholds and where it came from."""
    return {
        "recall": dict(zip(attributes, recall)),
        "specificity": dict(zip(attributes, specificity)),
        "thresholds": dict(zip(attributes, judge.thresholds.tolist())),
        "cache": str(judge.cache),
        "cached": judge.cached,
        "seconds": round(judge.seconds, 1),
    }


def guides_of(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The attribute guides that G's training stages read (file, sha256), from a weights file's info."""
    return [s["guide"] for s in info.get("stages", []) if s.get("guide")]


def reader_for(path: str, editor: FaceEditor) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """The robust reader of a file, refused when that file guided G: the measure would rise with the objective."""
    from stargan_app.evaluation.guide import robust_reader

    read, sha = robust_reader(path, editor.attributes)
    if any(g.get("sha256") == sha for g in guides_of(editor.info)):
        raise StarGANAppError(f"--robust-reader {path} guided this G's training: a reader must be another network.")
    return read, sha


def summarise(per_attribute: dict[str, dict], attributes: tuple[str, ...]) -> dict[str, float]:
    """Means over the hair colours and over the other attributes; the KID ratio and colour share over all."""
    hair = [a for a in attributes if a in HAIR_COLOURS]
    others = [a for a in attributes if a not in HAIR_COLOURS]
    summary = {}
    for key, name in (
        ("transfer_pipeline", "pipeline"),
        ("transfer_raw", "raw"),
        ("robust_transfer_pipeline", "robust"),
        ("robust_net_transfer_pipeline", "robust_net"),
        ("false_on_reconstruction", "false_on_reconstruction"),
    ):
        if key not in per_attribute:
            continue
        for part, attrs in (("hair", hair), ("others", others)):
            summary[f"{part}_{name}"] = float(np.nanmean([per_attribute[key][a] for a in attrs]))
    summary["kid_ratio_mean"] = float(np.nanmean([per_attribute["kid_pipeline"][a]["ratio"] for a in attributes]))
    summary["colour_implausible"] = float(
        np.nanmean([per_attribute["colour_implausible_pipeline"][a] for a in attributes])
    )
    return summary


def print_results(result: dict[str, Any], attributes: tuple[str, ...], editor: FaceEditor) -> None:
    recall, specificity = result["judge"]["recall"], result["judge"]["specificity"]
    rows = [
        [
            a,
            result["transfer_raw"][a],
            result["false_on_reconstruction"][a],
            result["transfer_pipeline"][a],
            result["robust_transfer_pipeline"][a],
            result["kid_pipeline"][a]["ratio"],
            result["colour_implausible_pipeline"][a],
            result["faces_switched_on"][a],
            recall[a],
            specificity[a],
        ]
        for a in attributes
    ]
    paste = (
        f"regions {result['regions'] or 'off'}, guided paste-back {'on' if editor.guided else 'off'}, "
        f"person/skin masks {'on' if result['person_masks'] else 'off'}"
    )
    judge = result["judge"]
    print_table(
        f"StarGAN on {result['test_faces']} held-out faces ({result['pipeline_no_face']} without a detected face; "
        f"{paste}); judge {'cached' if judge['cached'] else 'trained'}: {judge['cache']}",
        ["attribute", "raw", "raw_on_recon", "pipeline", "robust", "kid_ratio", "colour_bad", "faces", "judge_recall",
         "judge_spec"],
        rows,
    )  # fmt: skip
    print("summary: " + ", ".join(f"{k} {v:.4f}" for k, v in result["summary"].items()))


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
