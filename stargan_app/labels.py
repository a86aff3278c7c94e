"""Label vectors: user choices -> c vectors (one per label group touched), dataset mask, strength."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from stargan_app.config import LabelSchema
from stargan_app.errors import LabelError

MAX_STRENGTH = 2.0
DISPLAY_NAMES = {
    "Black_Hair": "Black hair",
    "Blond_Hair": "Blond hair",
    "Brown_Hair": "Brown hair",
    "Gray_Hair": "Gray hair",
    "Bangs": "Bangs",
    "Wearing_Earrings": "Earrings",
    "Wearing_Hat": "Hat",
    "Mustache": "Mustache",
    "Eyeglasses": "Glasses",
}


def display_name(attribute: str) -> str:
    """What a person reads for an attribute key ("Wearing_Hat" -> "Hat"); unknown keys lose their underscores."""
    return DISPLAY_NAMES.get(attribute, attribute.replace("_", " ").capitalize())


def resolve_attribute(schema: LabelSchema, name: str, among: tuple[str, ...] | None = None) -> str:
    """The schema key of `name`, given as the key ("Wearing_Hat") or as the UI shows it ("Hat"), in any case.

    `among` narrows the choice (default: every attribute); a name that matches none of them raises a LabelError that
    lists the valid ones.
    """
    among = schema.attributes if among is None else among
    wanted = name.strip().lower()
    for key in among:
        if wanted in (key.lower(), key.lower().replace("_", " "), display_name(key).lower()):
            return key
    valid = ", ".join(key if display_name(key) == key else f"{key} ({display_name(key)})" for key in among)
    raise LabelError(f"Unknown attribute {name!r}. Valid attributes: {valid}.")


def choice_targets(
    schema: LabelSchema, hair: str | None = None, switch_on: Sequence[str] = (), switch_off: Sequence[str] = ()
) -> dict[str, bool]:
    """{attribute key: on/off} from a hair colour ("blond", "Blond hair" or "Blond_Hair") and attribute names to
    switch on and off (keys or UI labels); refuses unknown names, two hair colours and an attribute both on and off."""
    targets: dict[str, bool] = {}
    if hair is not None:
        colours = schema.exclusive
        try:
            targets[resolve_attribute(schema, hair, colours)] = True
        except LabelError:
            try:
                targets[resolve_attribute(schema, f"{hair} hair", colours)] = True
            except LabelError:
                valid = ", ".join(display_name(c).lower().removesuffix(" hair") for c in colours)
                raise LabelError(f"Unknown hair colour {hair!r}. Valid hair colours: {valid}.") from None
    for name in switch_on:
        targets[resolve_attribute(schema, name)] = True
    for name in switch_off:
        key = resolve_attribute(schema, name)
        if targets.get(key):
            raise LabelError(f"{display_name(key)} is asked to be both switched on and off.")
        targets[key] = False
    hair_on = [display_name(a) for a in schema.exclusive if targets.get(a)]
    if len(hair_on) > 1:
        raise LabelError(f"Choose at most one hair colour (got {', '.join(hair_on)}).")
    return targets


def full_label_vector(schema: LabelSchema, group: int, group_labels: torch.Tensor) -> torch.Tensor:
    """Batch of c = [group A | group B | ... | mask]: the group's labels, zeros elsewhere, mask one-hot."""
    n = group_labels.size(0)
    c = group_labels.new_zeros(n, schema.c_dim)
    c[:, schema.group_slice(group)] = group_labels
    if schema.mask_dim:
        c[:, schema.cls_dim + group] = 1.0
    return c


def validate_targets(schema: LabelSchema, targets: Mapping[str, bool], strength: float) -> None:
    unknown = [name for name in targets if name not in schema.attributes]
    if unknown:
        raise LabelError(
            f"Unknown attribute {', '.join(map(repr, unknown))}. This model knows: {', '.join(schema.attributes)}."
        )
    if not isinstance(strength, (int, float)) or not 0.0 <= float(strength) <= MAX_STRENGTH:
        raise LabelError(f"Strength must be a number between 0 and {MAX_STRENGTH:g}, got {strength!r}.")


PRESENT_THRESHOLD = 0.5  # an attribute whose estimated probability reaches this counts as present


def is_present(source: Mapping[str, float] | None, attribute: str, threshold: float = PRESENT_THRESHOLD) -> bool:
    """Whether D's estimate `source` says the face has `attribute` (a missing estimate counts as absent); a decision
    that needs a surer reading passes its own threshold."""
    return float((source or {}).get(attribute, 0.0)) >= threshold


def present(values: torch.Tensor) -> torch.Tensor:
    """is_present for a whole tensor of probabilities or {0, 1} labels: a bool tensor of the same shape."""
    return values >= PRESENT_THRESHOLD


def recall_specificity(pred: torch.Tensor, truth: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per attribute (column), the share of faces with it that `pred` reads as having it, and of those without it
    read as without (NaN where a column has none)."""
    pos = present(truth)
    recall = [
        float(pred[pos[:, j], j].float().mean()) if pos[:, j].any() else float("nan") for j in range(pred.size(1))
    ]
    spec = [
        float((~pred[~pos[:, j], j]).float().mean()) if (~pos[:, j]).any() else float("nan")
        for j in range(pred.size(1))
    ]
    return recall, spec


def source_vector(schema: LabelSchema, source: Mapping[str, float] | None) -> torch.Tensor:
    """Binary source labels over all attributes (see is_present)."""
    return torch.tensor([1.0 if is_present(source, a) else 0.0 for a in schema.attributes])


def source_label_vector(schema: LabelSchema, group: int, source: Mapping[str, float] | None) -> torch.Tensor:
    """c that asks for no change in one label group: the face's own labels there, with that group's mask."""
    src = source_vector(schema, source)
    return full_label_vector(schema, group, src[schema.group_slice(group)][None])[0]


def target_vector(schema: LabelSchema, src: torch.Tensor, targets: Mapping[str, bool]) -> torch.Tensor:
    """Source labels with the user's choices applied; switching one exclusive attribute on clears the others."""
    trg = src.clone()
    index = {a: i for i, a in enumerate(schema.attributes)}
    for name, on in targets.items():
        if on and name in schema.exclusive:
            for other in schema.exclusive:
                trg[index[other]] = 0.0
    for name, on in targets.items():
        trg[index[name]] = 1.0 if on else 0.0
    return trg


def edit_passes(
    schema: LabelSchema,
    targets: Mapping[str, bool],
    source: Mapping[str, float] | None = None,
    strength: float = 1.0,
) -> list[torch.Tensor]:
    """One c vector (shape [c_dim]) per label group the targets touch, in group order.

    Within a group, untouched attributes keep their source value and c = c_src + strength * (c_trg - c_src).
    """
    validate_targets(schema, targets, strength)
    src = source_vector(schema, source)
    trg = target_vector(schema, src, targets)
    c_all = src + float(strength) * (trg - src)
    touched = sorted({schema.group_of(name) for name in targets})
    return [full_label_vector(schema, g, c_all[schema.group_slice(g)].unsqueeze(0))[0] for g in touched]


def single_attribute_edits(
    schema: LabelSchema, source: Mapping[str, float] | None = None
) -> list[tuple[str, torch.Tensor]]:
    """For the preview grid: for every attribute, the c vector that flips it (hair colours: set that colour)."""
    src = source_vector(schema, source)
    edits = []
    for g, attrs in enumerate(schema.groups):
        for name in attrs:
            on = name in schema.exclusive or not is_present(source, name)
            trg = target_vector(schema, src, {name: bool(on)})
            edits.append(
                (f"{'+' if on else '-'}{name}", full_label_vector(schema, g, trg[schema.group_slice(g)][None])[0])
            )
    return edits
