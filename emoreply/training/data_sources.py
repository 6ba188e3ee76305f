"""Where the training data come from: the --dataset flag, its check, and conversions into the local layouts.

    # FER-2013 from Kaggle's fer2013.csv (emotion, pixels, Usage) or a Hub copy with image + label
    python -m emoreply.training.data_sources fer2013 data/fer2013 --source fer2013.csv
    # DailyDialog from the Hub: the original loader is a script (datasets >= 4 refuses it); its parquet
    # conversion on the Hub's refs/convert/parquet branch loads
    python -m emoreply.training.data_sources dailydialog data/dailydialog \
        --source li2017dailydialog/daily_dialog --revision refs/convert/parquet
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

LAYOUTS = {
    "fer2013": {
        "default": "../shared/data/fer2013",  # --dataset's default: the training machine's shared copy
        "files": ("train*.parquet", "test*.parquet"),
        "columns": ({"image"}, {"label"}),
        "help": "FER-2013: a folder of train*.parquet and test*.parquet, or a Hub dataset id with train/test "
        "splits; columns image (48x48 grayscale) and label (0-6 in FER order: angry, disgust, fear, happy, sad, "
        "surprise, neutral)",
    },
    "dailydialog": {
        "default": "../shared/data/dailydialog",
        "files": ("train.jsonl", "validation.jsonl", "test.jsonl"),
        "columns": ({"utterances", "dialog"}, {"emotions", "emotion"}),
        "help": 'DailyDialog: a folder of train/validation/test.jsonl, one dialogue a line {"utterances": [...], '
        '"emotions": [...]} (DailyDialog ids: 0 none, 1 anger, 2 disgust, 3 fear, 4 happiness, 5 sadness, '
        "6 surprise), or a Hub dataset id with those columns (or dialog/emotion)",
    },
}
README_HINT = "See the README's Data section (python -m emoreply.training.data_sources converts a copy)."
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def add_dataset_arg(parser: argparse.ArgumentParser, kind: str, default: str | None = None) -> None:
    """``--dataset`` (default: ``LAYOUTS[kind]["default"]``) with the expected layout and the default in --help."""
    layout = LAYOUTS[kind]
    help_text = f"{layout['help']} (default: %(default)s)"
    parser.add_argument("--dataset", default=default or layout["default"], help=help_text)


def check_dataset(source: str | Path, kind: str, flag: str = "--dataset") -> None:
    """Exit with one line naming ``flag`` when ``source`` is neither a complete local folder nor a loadable Hub id.

    A Hub id is checked with ``load_dataset_builder`` (metadata only: seconds, not a download).
    """
    layout = LAYOUTS[kind]
    path = Path(source)
    if path.is_dir():
        missing = [pattern for pattern in layout["files"] if not any(path.glob(pattern))]
        if missing:
            raise SystemExit(f"{flag} {source}: no {', '.join(missing)} in that folder. {README_HINT}")
        return
    if path.exists() or not _HUB_ID.match(str(source)):
        raise SystemExit(f"{flag} {source}: no such folder (expected {layout['help']}). {README_HINT}")
    import datasets

    try:
        features = datasets.load_dataset_builder(str(source)).info.features
    except Exception as err:  # offline, unknown id, a script loader: one line, not the loader's traceback
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SystemExit(
            f"{flag} {source}: not a local folder, and not loadable from the Hub ({type(err).__name__}: {first}). "
            f"{README_HINT}"
        ) from None
    if features is not None and not all(names & set(features) for names in layout["columns"]):
        wanted = " and ".join("/".join(sorted(names)) for names in layout["columns"])
        raise SystemExit(f"{flag} {source}: columns {sorted(features)}, expected {wanted}. {README_HINT}")


def convert_fer2013(source: str, output: Path, revision: str | None = None) -> list[Path]:
    """FER-2013 from Kaggle's csv (emotion, pixels, Usage) or a Hub id -> output/{train,test}.parquet."""
    import datasets
    import numpy as np
    from PIL import Image

    output.mkdir(parents=True, exist_ok=True)
    if source.endswith(".csv"):
        import pandas as pd

        frame = pd.read_csv(source)
        usage = {"Training": "train", "PublicTest": "test"}  # PrivateTest: the challenge's final split, unused

        def png(pixels: str) -> dict:
            buf = io.BytesIO()
            Image.fromarray(np.array(pixels.split(), dtype=np.uint8).reshape(48, 48)).save(buf, format="PNG")
            return {"bytes": buf.getvalue(), "path": None}

        splits = {
            name: datasets.Dataset.from_dict(
                {"image": [png(p) for p in rows["pixels"]], "label": rows["emotion"].astype(int).tolist()}
            ).cast_column("image", datasets.Image())
            for usage_name, name in usage.items()
            for rows in [frame[frame["Usage"] == usage_name]]
        }
    else:
        loaded = datasets.load_dataset(source, revision=revision)
        splits = {name: loaded[name].select_columns(["image", "label"]) for name in ("train", "test")}
    written = []
    for name, ds in splits.items():
        ds.to_parquet(str(output / f"{name}.parquet"))
        written.append(output / f"{name}.parquet")
    return written


def convert_dailydialog(source: str, output: Path, revision: str | None = None) -> list[Path]:
    """DailyDialog from a Hub id (dialog/emotion or utterances/emotions) -> output/{split}.jsonl."""
    import datasets

    loaded = datasets.load_dataset(source, revision=revision)
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for split in ("train", "validation", "test"):
        ds = loaded[split]
        utt = "utterances" if "utterances" in ds.column_names else "dialog"
        emo = "emotions" if "emotions" in ds.column_names else "emotion"
        file = output / f"{split}.jsonl"
        with file.open("w") as f:
            for u, e in zip(ds[utt], ds[emo], strict=True):
                f.write(json.dumps({"utterances": u, "emotions": e}, ensure_ascii=False) + "\n")
        written.append(file)
    return written


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=sorted(LAYOUTS))
    parser.add_argument("output", type=Path, help="the folder to write (then pass it as --dataset)")
    parser.add_argument("--source", required=True, help="Hub dataset id, or for fer2013 Kaggle's fer2013.csv")
    parser.add_argument("--revision", help="Hub branch or commit, e.g. refs/convert/parquet")
    args = parser.parse_args(argv)
    convert = convert_fer2013 if args.kind == "fer2013" else convert_dailydialog
    written = convert(args.source, args.output, args.revision)
    check_dataset(args.output, args.kind)
    print("wrote " + ", ".join(str(p) for p in written))
    return written


if __name__ == "__main__":
    main()
