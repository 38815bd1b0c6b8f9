"""Where `data=csv` finds its tables: a path as given, else under the data root; known files are checksummed.

The UCI Adult CSVs of `../shared/data/adult` are the tabular benchmark; their sha256 sums are recorded here so a
truncated or different file is named as such before a model trains on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from gan_jax.data.images import resolve_data_root
from gan_jax.errors import DataError

# Relative path under the data root -> sha256 (see ../shared/data/README.md for sources).
KNOWN_TABLES = {
    "adult/adult_train.csv": "f2c62076f19504d99a38b22badf445a7f42530ade6b827acf78dd143fbce38bb",
    "adult/adult_test.csv": "f6b1801c5d231515ea5ff04d4444997bacd57e04876e94710cb9b9bd5549c033",
}
ADULT_SOURCE = (
    "UCI Adult (https://archive.ics.uci.edu/dataset/2/adult): adult.data / adult.test with a header row "
    "(age,workclass,fnlwgt,...,income), the '.' removed from the test labels"
)


def resolve_table_path(path: str, root: str | None) -> Path:
    """`path` itself when it exists, else `<data root>/<path>`; a missing file names both places it was looked
    for (and, for a known file, its checksum and source). A known file with the wrong checksum is refused."""
    given = Path(path).expanduser()
    data_root = resolve_data_root(root)
    candidates = [given] if given.is_absolute() else [given, data_root / given]
    found = next((c for c in candidates if c.is_file()), None)
    key = _known_key(path)
    if found is None:
        looked = " and ".join(str(c.resolve()) for c in candidates)
        hint = ""
        if key:
            hint = f" It is {ADULT_SOURCE}; sha256 {KNOWN_TABLES[key]}."
        raise DataError(
            f"table file {path!r} not found (looked at {looked}). Pass data.path=<file> or set data.root=<dir> "
            f"(or GAN_JAX_DATA) to the folder that holds it.{hint}"
        )
    if key and _sha256(found) != KNOWN_TABLES[key]:
        raise DataError(
            f"{found} does not match the recorded checksum of {key} (sha256 {KNOWN_TABLES[key]}): the file is "
            "damaged or a different version; restore it from ../shared/data or the UCI source."
        )
    return found


def _known_key(path: str) -> str | None:
    parts = Path(path).as_posix()
    return next((k for k in KNOWN_TABLES if parts == k or parts.endswith("/" + k)), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
