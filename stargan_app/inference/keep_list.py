"""Which attributes a weights file edits well enough to keep, as counted on its portrait sheet.

A person counts the sheet (`app.py sheet`: five portraits, one column per attribute) tile by tile; an attribute whose
column has enough keepers is kept, the others are experimental, and the app says so next to their checkboxes. The
count lives beside the weights as NAME.keep.json, with the file it was judged on (name and sha256), so a better file
ships with its own count and the code does not change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stargan_app.checkpoint import file_sha256, find_beside_weights, keep_list_name
from stargan_app.errors import WeightsError

KEEP_LIST_FORMAT = "stargan-app-keep-list/1"


@dataclass(frozen=True)
class KeepList:
    """The portrait-sheet count of one weights file."""

    kept_tiles: Mapping[str, int]  # attribute key -> tiles of its sheet column a person would keep
    portraits: int  # portraits on the sheet: the tiles in each column
    min_kept_tiles: int  # an attribute is kept when at least this many of its column's tiles are
    judged: str  # when the sheet was counted (ISO date)
    weights: str  # the weights file's name as judged
    weights_sha256: str  # that file's sha256: a list belongs to one file's bytes
    note: str = ""  # how the sheet was made and counted, for the person who reads the file
    path: str = field(default="", compare=False)  # where it was loaded from ('' when built in code)

    @property
    def kept(self) -> tuple[str, ...]:
        """The attributes edited well enough to keep, in the count's order."""
        return tuple(a for a, n in self.kept_tiles.items() if n >= self.min_kept_tiles)

    def experimental(self, attributes: Sequence[str]) -> tuple[str, ...]:
        """Those of `attributes` that are not kept."""
        return tuple(a for a in attributes if a not in self.kept)

    def check(self, attributes: Sequence[str]) -> None:
        """Refuse a list that does not count exactly the model's attributes."""
        if set(self.kept_tiles) != set(attributes):
            raise WeightsError(
                f"{self._name} counts {sorted(self.kept_tiles)}, but the model edits {sorted(attributes)}: count the "
                "portrait sheet of this weights file again."
            )

    def judged_on(self, weights: str | Path) -> bool:
        """Whether this list counted the sheet of `weights` (by sha256): a retrained file has not been judged yet."""
        return file_sha256(weights) == self.weights_sha256

    @property
    def _name(self) -> str:
        return Path(self.path).name or "the keep list"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": KEEP_LIST_FORMAT,
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "judged": self.judged,
            "note": self.note,
            "portraits": self.portraits,
            "min_kept_tiles": self.min_kept_tiles,
            "kept_tiles": dict(self.kept_tiles),
            "keep": list(self.kept),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> KeepList:
        """The list in `path`; a file that is not one (unreadable, not JSON, fields missing or inconsistent) raises a
        WeightsError that names it and says what is wrong."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise WeightsError(f"{path.name} is not a readable keep list ({e}).") from None
        problem = _problem(data)
        if problem:
            raise WeightsError(f"{path.name} is not a keep list of this app: {problem}.")
        fields = ("weights", "weights_sha256", "judged", "portraits", "min_kept_tiles", "kept_tiles")
        return cls(**{k: data[k] for k in fields}, note=data.get("note", ""), path=str(path))


def _problem(data: Any) -> str:
    """What makes parsed JSON not a keep list ('' when it is one)."""
    if not isinstance(data, dict) or data.get("format") != KEEP_LIST_FORMAT:
        return f"its format is not {KEEP_LIST_FORMAT}"
    for key in ("weights", "weights_sha256", "judged"):
        if not isinstance(data.get(key), str) or not data[key]:
            return f"'{key}' must be a non-empty string"
    portraits, least, tiles = data.get("portraits"), data.get("min_kept_tiles"), data.get("kept_tiles")
    if not _count(portraits) or portraits < 1 or not _count(least) or not 1 <= least <= portraits:
        return "'portraits' must be a positive whole number and 'min_kept_tiles' one from 1 to it"
    if not isinstance(tiles, dict) or not tiles or not all(_count(n) and n <= portraits for n in tiles.values()):
        return f"'kept_tiles' must map each attribute to a count from 0 to {portraits}"
    keep = data.get("keep")
    if keep != [a for a, n in tiles.items() if n >= least]:
        return f"'keep' ({keep}) is not the attributes with at least {least} kept tiles"
    return ""


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def find_keep_list(weights: str | Path, keep_list: str | Path | bool | KeepList | None = None) -> KeepList | None:
    """The keep list to use with a weights file: None/True NAME.keep.json beside it if there is one, False none, else
    that path (or list)."""
    return find_beside_weights(weights, keep_list, keep_list_name(Path(weights).name), KeepList.load, KeepList)
