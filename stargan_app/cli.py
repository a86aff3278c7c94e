"""Command-line subcommands: edit, train, export, publish, import-official, build-regions, sheet, eval. Heavy modules
are imported lazily."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stargan_app.config import refuse_removed
from stargan_app.errors import StarGANAppError
from stargan_app.training.options import CGANTrainConfig, GuideTrainConfig, StarGANTrainConfig
from stargan_app.training.presets import DEFAULT_PRESET, PRESETS


def add_config_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "") -> None:
    """One --flag per dataclass field, documented by the field's help; defaults stay implicit (SUPPRESS)."""
    for f in dataclasses.fields(cls):
        flag = "--" + prefix + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default!r})"
        if f.type in (bool, "bool"):
            parser.add_argument(
                flag,
                dest=prefix + f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), type(f.default))
            choices = f.metadata.get("choices")
            parser.add_argument(
                flag,
                dest=prefix + f.name,
                type=kind,
                choices=choices,
                default=argparse.SUPPRESS,
                metavar="{" + ",".join(choices) + "}" if choices else f.name.upper(),
                help=help_text,
            )


def build_config(
    cls: type, args: argparse.Namespace, prefix: str = "", resume: str | None = None, base: Any = None
) -> Any:
    """Defaults (or the fields of `base`, a preset) <- the resumed run's config.json <- flags given on the command
    line."""
    values: dict[str, Any] = dataclasses.asdict(base) if base is not None else {}
    if resume:
        saved = Path(resume) / "config.json"
        if not saved.is_file():
            raise SystemExit(f"--resume {resume}: no config.json there; is this a run directory?")
        names = {f.name for f in dataclasses.fields(cls)}
        saved_values = json.loads(saved.read_text())
        try:
            refuse_removed(saved_values)  # its removed options would otherwise be dropped silently
        except ValueError as e:
            raise SystemExit(f"--resume {resume}: {e}; this run cannot be resumed by this version.") from None
        values.update({k: v for k, v in saved_values.items() if k in names})
        values["run_dir"] = str(resume)
    for f in dataclasses.fields(cls):
        if hasattr(args, prefix + f.name):
            values[f.name] = getattr(args, prefix + f.name)
    return cls(**values)


def stargan_config(args: argparse.Namespace) -> StarGANTrainConfig:
    """`train stargan`'s config: its preset (or, resuming without one, the run's own), then its flags; says which."""
    preset = args.preset or (None if args.resume else DEFAULT_PRESET)
    cfg = build_config(StarGANTrainConfig, args, resume=args.resume, base=PRESETS[preset] if preset else None)
    if preset == DEFAULT_PRESET and not args.preset:
        print(f"training preset '{preset}' (the paper's recipe); the shipped line is --preset campaign")
    elif preset:
        print(f"training preset '{preset}'" + (" with the flags given beside it" if cfg != PRESETS[preset] else ""))
    return cfg


def build_parser() -> argparse.ArgumentParser:
    # prog: the name it was started by (app.py, or the stargan-app console script)
    parser = argparse.ArgumentParser(
        description="StarGAN face editor and class-conditional GAN. With no command, serves the web app."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_edit_parser(sub)
    add_train_parsers(sub)
    add_weights_file_parsers(sub)
    add_eval_parsers(sub)
    return parser


def face_number(text: str) -> int:
    """argparse type of --face: a whole number from 0."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a face number from 0 (the largest face), got {text!r}")
    return number


def add_edit_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit",
        help="edit the faces in photo files and write the edited photos",
        description="Edit every face (or face N) of each photo and write the edited photo under --out with the same "
        "file name. A photo that cannot be read or has no face is reported and skipped; the exit status is 1 "
        "when any photo was not written.",
        epilog="example: stargan-app edit photos/*.jpg --hair blond --set Eyeglasses --unset Wearing_Hat "
        "--strength 1.2 --out edited/",
    )
    p.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="photo files")
    p.add_argument("--hair", metavar="COLOUR", help="set this hair colour (black, blond, brown, gray)")
    attribute_help = "(repeatable): its name, e.g. Eyeglasses, or its label in the app, e.g. Glasses"
    p.add_argument(
        "--set", dest="switch_on", action="append", default=[], metavar="ATTRIBUTE", help="switch on " + attribute_help
    )
    p.add_argument(
        "--unset",
        dest="switch_off",
        action="append",
        default=[],
        metavar="ATTRIBUTE",
        help="switch off " + attribute_help,
    )
    p.add_argument("--strength", type=float, default=1.0, help="0 keeps the photo, 1 is the model's edit, 2 the most")
    p.add_argument("--face", type=face_number, default=None, metavar="N", help="edit only face N (0: the largest)")
    p.add_argument("--out", type=Path, default=Path("edited"), help="folder for the edited photos (default: edited)")
    p.add_argument("--overwrite", action="store_true", help="replace edited photos already in --out")
    p.add_argument(
        "--json", action="store_true", help="print one JSON line per photo: its faces, attributes before, output"
    )
    p.add_argument("--weights", default=None, help="weights file (default: the shipped one)")


def add_train_parsers(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train models and write the weights the app serves")
    tsub = train.add_subparsers(dest="model", required=True)
    trainers = (
        ("stargan", "StarGAN on CelebA with two label groups and a mask vector", StarGANTrainConfig),
        ("cgan", "conditional MLP GAN on MNIST or Fashion-MNIST", CGANTrainConfig),
        (
            "guide",
            "the robust (PGD-L2 adversarially trained) attribute classifier that guides StarGAN's training",
            GuideTrainConfig,
        ),
    )
    for name, help_text, cls in trainers:
        p = tsub.add_parser(name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its newest checkpoint")
        if cls is StarGANTrainConfig:
            p.add_argument(
                "--preset",
                choices=tuple(PRESETS),
                default=None,
                help=f"a named recipe (training/presets.py) whose fields replace the defaults; the flags given beside "
                f"it override them. 'campaign' is the shipped line. Without it: '{DEFAULT_PRESET}', the paper's "
                "(a resumed run: its own config)",
            )
        add_config_flags(p, cls)
    p = tsub.add_parser("all", help="StarGAN, CGAN-MNIST and CGAN-Fashion in turn, with their defaults")
    p.add_argument("--celeba-dir", default=StarGANTrainConfig.data_dir, help="CelebA folder")
    p.add_argument("--mnist-dir", default="", help="MNIST idx folder ('' = download)")
    p.add_argument("--fashion-dir", default="", help="Fashion-MNIST idx folder ('' = download)")


def add_weights_file_parsers(sub: argparse._SubParsersAction) -> None:
    """The commands that write or upload weights files: export, publish, import-official, build-regions."""
    p = sub.add_parser("export", help="write a run's newest checkpoint as a weights file")
    p.add_argument("run_dir", help="run directory (holds checkpoints/)")
    p.add_argument("--out", required=True, help="output .safetensors path")
    p.add_argument("--fp16", action="store_true", help="store floating-point tensors as fp16")
    p.add_argument(
        "--training-state",
        action="store_true",
        help="also store the raw G, so `train stargan --continue-from OUT` can go on from the file alone",
    )

    p = sub.add_parser("publish", help="upload the app as a Hugging Face Space (and the weights as a model repo)")
    p.add_argument("--space", required=True, help="USER/NAME of the Space")
    p.add_argument("--model-repo", default=None, help="USER/NAME of a model repo for the weights and their card")
    p.add_argument("--dry-run", metavar="DIR", default=None, help="only write what would be uploaded into DIR")

    p = sub.add_parser("import-official", help="convert official yunjey/stargan G/D .ckpt files")
    p.add_argument("g_ckpt", help="official *-G.ckpt")
    p.add_argument("d_ckpt", nargs="?", help="official *-D.ckpt (optional: enables attribute estimates)")
    p.add_argument(
        "--attrs",
        required=True,
        help="attribute names in the model's label order, comma-separated; ';' separates label groups",
    )
    p.add_argument("--image-size", type=int, default=128, help="resolution the model was trained at")
    p.add_argument("--out", required=True, help="output .safetensors path")

    p = sub.add_parser(
        "build-regions", help="estimate where each attribute lives on the crop (maps shipped beside the weights)"
    )
    p.add_argument(
        "--weights", default=None, help="weights file whose attributes and size to use (default: the shipped one)"
    )
    p.add_argument(
        "--data-dir", default=StarGANTrainConfig.data_dir, help="CelebA folder (only the training ids are read)"
    )
    p.add_argument("--test-size", type=int, default=1000, help="held-out last ids, never read")
    p.add_argument("--out", default=None, help="output file (default: NAME.regions.safetensors beside the weights)")
    p.add_argument("--sheet", default=None, help="also write a labelled PNG of the maps here")

    p = sub.add_parser(
        "build-hair-colours", help="fit the colours real hair has (the model served hair-colour edits take chroma from)"
    )
    p.add_argument(
        "--data-dir", default=StarGANTrainConfig.data_dir, help="CelebA folder (only the training ids are read)"
    )
    p.add_argument("--test-size", type=int, default=1000, help="held-out last ids, never read")
    p.add_argument("--regions", default=None, help="region maps that say where hair lives (default: the shipped ones)")
    p.add_argument("--out", default="weights/hair_colours.safetensors", help="output file (beside the weights)")
    p.add_argument("--picture", default=None, help="also draw each colour's curves into this PNG")


def add_hair_colours_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hair-colours",
        default=None,
        help="'off' (hair colours as G draws them), or a hair-colour model file (default: the one beside the weights)",
    )


def add_regions_argument(parser: argparse.ArgumentParser, more_help: str = "") -> None:
    parser.add_argument(
        "--regions",
        default=None,
        help=f"'off', or a region-maps file (default: the one beside the weights, if any{more_help})",
    )


def add_eval_parsers(sub: argparse._SubParsersAction) -> None:
    """eval (figures on held-out CelebA) and sheet (pictures of every edit on the example portraits)."""
    p = sub.add_parser(
        "sheet", help="write a labelled PNG of every single-attribute edit of the portraits in assets/, as served"
    )
    p.add_argument("--out", required=True, help="output .png path")
    p.add_argument("--weights", default=None, help="weights file (default: the shipped one)")
    p.add_argument("--faces-dir", default=None, help="more single-face portraits to put above the ones in assets/")
    p.add_argument("--tile", type=int, default=160, help="side of each tile in pixels")
    add_regions_argument(p, "; a run's candidate has none: pass weights/stargan_celeba.regions.safetensors")
    add_hair_colours_argument(p)

    p = sub.add_parser("eval", help="measure shipped or given weights")
    esub = p.add_subparsers(dest="model", required=True)
    add_eval_stargan_parser(esub)
    add_eval_hair_colours_parser(esub)
    e = esub.add_parser("guide", help="the guide's held-out recall/specificity and its gradient-ascent grid")
    add_held_out_arguments(e, "weights/stargan_guide.safetensors", "a `train guide` weights file")
    e.add_argument("--out", default=None, help="write the ascent grid (a PNG) here")
    e.add_argument("--faces", type=int, default=8, help="held-out faces in the grid")
    e.add_argument("--json", default=None, help="also write the results here")
    e = esub.add_parser("cgan", help="class accuracy and diversity of samples per a reference classifier")
    e.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    e.add_argument("--weights", default=None, help="weights file (default: the shipped one)")
    e.add_argument("--data-dir", default="", help="idx folder ('' = download)")
    e.add_argument("--per-class", type=int, default=1000, help="samples per class")
    e.add_argument("--cache-dir", default="runs/eval_cache", help="where the reference classifier is cached")
    e.add_argument("--json", default=None, help="also write the results here")


def add_held_out_arguments(e: argparse.ArgumentParser, weights: str | None = None, what: str = "weights file") -> None:
    """--weights, --data-dir and --test-size: the file an eval measures and the held-out CelebA ids it reads."""
    e.add_argument("--weights", default=weights, help=what if weights else f"{what} (default: the shipped one)")
    e.add_argument("--data-dir", default=StarGANTrainConfig.data_dir, help="CelebA folder")
    e.add_argument("--test-size", type=int, default=1000, help="held-out last ids")


def add_eval_hair_colours_parser(esub: argparse._SubParsersAction) -> None:
    e = esub.add_parser("hair-colours", help="share of served hair-colour edits whose colour real hair of it has")
    add_held_out_arguments(e)
    e.add_argument("--limit", type=int, default=40, help="held-out photos edited")
    add_regions_argument(e)
    add_hair_colours_argument(e)
    e.add_argument(
        "--labelled-source",
        action="store_true",
        help="edit from the data set's labels, not the app's reading (which skips faces it reads as that colour)",
    )
    e.add_argument("--json", default=None, help="also write the results here")


def add_eval_stargan_parser(esub: argparse._SubParsersAction) -> None:
    """eval stargan: the held-out figures of a weights file, through the served pipeline and its options."""
    e = esub.add_parser("stargan", help="attribute transfer, reconstruction and classifier ceiling on held-out faces")
    add_held_out_arguments(e)
    e.add_argument("--limit", type=int, default=0, help="judge only the first N held-out faces (0 = all)")
    e.add_argument("--cache-dir", default="runs/eval_cache", help="where the reference classifier is cached")
    e.add_argument("--sheet", default=None, help="also write a labelled PNG of edited portraits here")
    e.add_argument("--faces-dir", default="../shared/data/faces", help="portraits for the sheet (plus assets/)")
    e.add_argument(
        "--change-smoothing",
        type=float,
        default=None,
        help="blur (model px) of an image generator's pasted change (default: the app's)",
    )
    e.add_argument(
        "--change-window",
        type=float,
        default=None,
        help="fade an image generator's change from this fraction of the crop's half-width (default: the app's)",
    )
    add_regions_argument(e)
    add_hair_colours_argument(e)
    e.add_argument(
        "--guided",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="edge-aware (guided-filter) paste-back of the change (default: on exactly when there are region maps)",
    )
    e.add_argument(
        "--person-masks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="gate hair edits by each face's person and skin masks, as the app does (they change the hair figures)",
    )
    e.add_argument("--json", default=None, help="also write the results here")
    e.add_argument(
        "--robust-reader",
        default=None,
        help="a second robust attribute network (a `train guide` file of another seed) that neither guided nor "
        "judged: its transfer reading is one only real features pass (default: none)",
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except StarGANAppError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _edit(args: argparse.Namespace) -> int:
    """The edit command: resolve the attribute names, then one report line per photo (and a progress bar)."""
    from tqdm import tqdm

    from stargan_app.inference import FaceEditor
    from stargan_app.inference.batch import edit_files
    from stargan_app.labels import choice_targets, validate_targets

    if args.hair is None and not args.switch_on and not args.switch_off:
        raise StarGANAppError("Nothing to edit: give --hair, --set or --unset (see `edit --help`).")
    if args.out.exists() and not args.out.is_dir():
        raise StarGANAppError(f"--out {args.out} is a file; give a folder for the edited photos.")
    editor = FaceEditor.from_pretrained(args.weights)
    targets = choice_targets(editor.schema, args.hair, args.switch_on, args.switch_off)
    validate_targets(editor.schema, targets, args.strength)
    failed = 0
    photos = tqdm(args.photos, unit="photo", file=sys.stderr, disable=None)
    for report in edit_files(editor, photos, targets, args.out, args.strength, args.face, args.overwrite):
        if args.json:
            photos.write(report.to_json(), file=sys.stdout)
        if not report.ok:
            failed += 1
            photos.write(f"{report.input}: {report.error}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(args.photos)} photo(s) not edited.", file=sys.stderr)
    return 1 if failed else 0


def _train(args: argparse.Namespace) -> int:
    """train stargan|cgan|guide (from their flags, or a resumed run's config), or all three with their defaults."""
    from stargan_app.training.cgan_loop import train_cgan
    from stargan_app.training.guide_loop import train_guide
    from stargan_app.training.stargan_loop import train_stargan

    if args.model == "stargan":
        train_stargan(stargan_config(args))
    elif args.model == "cgan":
        train_cgan(build_config(CGANTrainConfig, args, resume=args.resume))
    elif args.model == "guide":
        train_guide(build_config(GuideTrainConfig, args, resume=args.resume))
    else:
        train_stargan(StarGANTrainConfig(data_dir=args.celeba_dir))
        train_cgan(CGANTrainConfig(dataset="mnist", data_dir=args.mnist_dir))
        train_cgan(CGANTrainConfig(dataset="fashion", data_dir=args.fashion_dir))
    return 0


def _export(args: argparse.Namespace) -> Any:
    from stargan_app.training.export import export_run

    return export_run(args.run_dir, args.out, fp16=args.fp16, training_state=args.training_state)


def _publish(args: argparse.Namespace) -> Any:
    from stargan_app.publish import publish

    return publish(args.space, args.model_repo, args.dry_run)


def _import_official(args: argparse.Namespace) -> Any:
    from stargan_app.official import import_official

    return import_official(args.g_ckpt, args.d_ckpt, args.attrs, args.image_size, args.out)


def _build_regions(args: argparse.Namespace) -> Any:
    from stargan_app.evaluation.regions import build_regions

    return build_regions(args.weights, args.data_dir, args.out, args.test_size, args.sheet)


def _build_hair_colours(args: argparse.Namespace) -> Any:
    from stargan_app.evaluation.hair_colours import build_hair_colours

    return build_hair_colours(args.data_dir, args.out, args.test_size, args.regions, args.picture)


def _served_editor(args: argparse.Namespace):
    """The FaceEditor of --weights with the --regions and --hair-colours given (each 'off', a path, or the default)."""
    from stargan_app.inference import FaceEditor
    from stargan_app.inference.compositing import regions_option

    colours = regions_option(getattr(args, "hair_colours", None))
    return FaceEditor.from_pretrained(
        args.weights, regions=regions_option(getattr(args, "regions", None)), hair_colours=colours
    )


def _sheet(args: argparse.Namespace) -> Any:
    from stargan_app.evaluation.stargan import write_sheet

    return write_sheet(_served_editor(args), args.out, args.faces_dir, args.tile)


def _eval(args: argparse.Namespace) -> int:
    """eval stargan|guide|cgan: print the figures, and with --json write them."""
    if args.model == "stargan":
        from stargan_app.evaluation.stargan import eval_stargan

        options = (
            "change_smoothing", "change_window", "regions", "guided", "person_masks", "robust_reader", "hair_colours",
        )  # fmt: skip
        result = eval_stargan(
            args.weights, args.data_dir, args.test_size, args.limit, args.cache_dir, args.sheet, args.faces_dir,
            **{name: getattr(args, name) for name in options},
        )  # fmt: skip
    elif args.model == "hair-colours":
        from stargan_app.evaluation.hair_colours import hair_colour_plausibility

        result = hair_colour_plausibility(
            _served_editor(args), args.data_dir, args.limit, args.test_size, labelled_source=args.labelled_source
        )
    elif args.model == "guide":
        from stargan_app.evaluation.guide import eval_guide

        result = eval_guide(args.weights, args.data_dir, args.out, args.test_size, args.faces)
    else:
        from stargan_app.evaluation.cgan import eval_cgan

        result = eval_cgan(args.dataset, args.weights, args.data_dir, args.per_class, args.cache_dir)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


# subcommand -> its handler: an int is the exit status, anything else (the path written) is printed
COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "edit": _edit,
    "train": _train,
    "export": _export,
    "publish": _publish,
    "import-official": _import_official,
    "build-regions": _build_regions,
    "build-hair-colours": _build_hair_colours,
    "sheet": _sheet,
    "eval": _eval,
}


def _dispatch(args: argparse.Namespace) -> int:
    result = COMMANDS[args.command](args)
    if isinstance(result, int):
        return result
    print(result)
    return 0
